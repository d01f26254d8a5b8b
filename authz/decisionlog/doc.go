// Package decisionlog records Warden's decisions off the request path and
// reads them back.
//
// It holds:
//   - Record, one decision (SPEC §8), and its reflection-free JSON encoder
//     (recordjson.go), which writes what encoding/json would;
//   - the bounds every record is kept within (RecordLimits, bound.go):
//     caller-influenced strings cut, credential-looking words redacted, the
//     Cedar section left out when the record would be too large;
//   - DecisionLog, the asynchronous log, with its metrics
//     (warden_decision_log_dropped_total,
//     warden_decision_log_write_errors_total) registered on the registry
//     New is given, and its sinks: WriterSink (stdout, a rotating file) and
//     RedisStreamSink;
//   - the sources that read records back (LogSource, Follower, RawScanner):
//     FileSource (a file sink and its rotated backups; Follow watches it
//     with fsnotify), StreamSource (the Redis stream) and Ring (this
//     replica's recent records in memory), with Filter, newest-first paging
//     cursors and raw scans for replay and access review.
//
// # Imports
//
// decisionlog is below the pipeline: authz, authz/server, authz/admin,
// authz/review, authz/authzen and cmd/warden import it, and it imports none
// of them (nor anything of authz). It may import policy (for the Cedar
// request a replayable record keeps), internal packages, and its libraries
// (cedar-go, go-redis, fsnotify, prometheus). The Reason constants live here
// because records carry them; authz's denial table maps each to a response.
//
// # A record's life
//
//  1. The pipeline (authz) fills one Record from its stages' results and,
//     when the decision is logged (every deny, allows as sample_allow says),
//     hands it to DecisionLog.Record on the request path; Record.Hold notes
//     the request memory its Cedar section still references.
//  2. DecisionLog.Record copies the record's caller-influenced strings (so
//     it no longer holds the request's memory) and queues it, or drops and
//     counts it when the buffer is full in records or bytes. It never
//     blocks.
//  3. The log's goroutine bounds the record (RecordLimits) and encodes it
//     as one JSON line: without copying what needs no cutting or redacting
//     (encode), or as a bounded copy (bounded) when something does, and
//     always for the Ring when there is one (Options.Keep), which must not
//     keep the request's memory. It writes the line to every sink,
//     flushing at the end of each burst; a failed write or flush is
//     counted and told to Options.OnError.
//  4. Close stops accepting records, writes out the buffered ones, closes
//     the sinks and returns their close errors, joined.
//  5. Readers (warden logs, the admin API, warden replay and
//     access-review) query, follow or scan the sinks through the sources.
package decisionlog
