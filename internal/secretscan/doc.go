// Package secretscan holds the suite-wide secret scan: a test that reads
// every log line and decision record the rest of the test suite produced
// (captured by internal/testlog into WARDEN_TEST_CAPTURE) and fails on
// anything shaped like a token or private key, or any registered secret.
// `go tool task test` runs it after the suite; run alone it skips.
package secretscan
