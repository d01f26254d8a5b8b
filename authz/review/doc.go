// Package review reads a window of replayable decision records
// (decision_log.replayable) and answers two questions about a policy set:
// what would change if it were in service (Replay, for warden replay), and
// how far the grants exceed what is used, with a narrower set that allows
// exactly what was used (Review and Suggest, for warden access-review).
package review
