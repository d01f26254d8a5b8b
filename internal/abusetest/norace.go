//go:build !race

package abusetest

// Race reports whether the race detector is on.
const Race = false
