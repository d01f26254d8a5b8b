// Package decisionlog records Warden's decisions off the request path: the
// Record type and its JSON encoding, the asynchronous DecisionLog with its
// sinks (a writer, a Redis stream), and the sources that read records back
// (a file and its backups, the Redis stream, an in-memory Ring) with their
// Filter, paging cursors and raw scans.
package decisionlog
