package review

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/policy"
)

// Change kinds.
const (
	NewlyDenied    = "newly_denied"
	NewlyAllowed   = "newly_allowed"
	ReasonsChanged = "reasons_changed"
)

// Change is one logged decision that the candidate set decides otherwise.
type Change struct {
	Kind       string    `json:"kind"`
	Time       time.Time `json:"time"`
	DecisionID string    `json:"decision_id"`
	Principal  string    `json:"principal"`
	Action     string    `json:"action"`
	Resource   string    `json:"resource"`
	Before     Verdict   `json:"before"`
	After      Verdict   `json:"after"`
}

// Verdict is a policy decision with its determining policies.
type Verdict struct {
	Decision string   `json:"decision"`
	Policies []string `json:"policies"`
}

// ReplayReport is what Replay found.
type ReplayReport struct {
	Records       int            `json:"records"`        // read in the window
	Replayed      int            `json:"replayed"`       // with a Cedar request
	NotReplayable int            `json:"not_replayable"` // refused before the policies, logged without replayable, or unreadable
	Counts        map[string]int `json:"counts"`         // by change kind
	Changes       []Change       `json:"changes"`        // oldest first, at most the limit asked
	Truncated     bool           `json:"truncated,omitempty"`
}

// Changed reports whether any decision or its deciding policies would
// change.
func (r *ReplayReport) Changed() bool { return len(r.Changes) > 0 || r.Truncated }

// DecisionsChanged reports whether any decision would change (allow to deny
// or deny to allow), counting the changes not kept too.
func (r *ReplayReport) DecisionsChanged() bool {
	return r.Counts[NewlyDenied]+r.Counts[NewlyAllowed] > 0
}

// logLine is the part of a record replay reads.
type logLine struct {
	Time       time.Time      `json:"time"`
	DecisionID string         `json:"decision_id"`
	Policies   []string       `json:"policies"`
	Principal  string         `json:"principal"`
	Action     string         `json:"action"`
	Resource   string         `json:"resource"`
	Cedar      *policy.Logged `json:"cedar"`
}

// Replay decides every replayable record of src since the given time
// against set, on every core, and reports the decisions that change
// (keeping at most maxChanges of them; all are counted).
func Replay(ctx context.Context, src decisionlog.LogSource, since time.Time, set *policy.Set, maxChanges int) (*ReplayReport, error) {
	rep := &ReplayReport{Counts: map[string]int{NewlyDenied: 0, NewlyAllowed: 0, ReasonsChanged: 0}}
	lines := make(chan []byte, 1024)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range lines {
				var l logLine
				var res policy.Result
				err := json.Unmarshal(b, &l)
				if err == nil && l.Cedar == nil {
					err = errNoCedar
				}
				if err == nil {
					res, err = set.Replay(l.Cedar)
				}
				if err != nil {
					mu.Lock()
					rep.NotReplayable++
					mu.Unlock()
					continue
				}
				ch, changed := compare(&l, res)
				mu.Lock()
				rep.Replayed++
				if changed {
					rep.Counts[ch.Kind]++
					if len(rep.Changes) < maxChanges {
						rep.Changes = append(rep.Changes, ch)
					} else {
						rep.Truncated = true
					}
				}
				mu.Unlock()
			}
		}()
	}
	err := decisionlog.ScanRaw(ctx, src, since, func(line []byte) error {
		rep.Records++
		lines <- slices.Clone(line)
		return nil
	})
	close(lines)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	sort.Slice(rep.Changes, func(i, j int) bool { return rep.Changes[i].Time.Before(rep.Changes[j].Time) })
	return rep, nil
}

var errNoCedar = errors.New("record without its Cedar request")

func compare(l *logLine, res policy.Result) (Change, bool) {
	before := Verdict{Decision: l.Cedar.Decision, Policies: sorted(l.Policies)}
	after := Verdict{Decision: "deny", Policies: sorted(res.Reasons)}
	if res.Allow {
		after.Decision = "allow"
	}
	ch := Change{Time: l.Time, DecisionID: l.DecisionID, Principal: l.Principal, Action: l.Action, Resource: l.Resource, Before: before, After: after}
	switch {
	case before.Decision == "allow" && after.Decision == "deny":
		ch.Kind = NewlyDenied
	case before.Decision == "deny" && after.Decision == "allow":
		ch.Kind = NewlyAllowed
	case !slices.Equal(before.Policies, after.Policies):
		ch.Kind = ReasonsChanged
	default:
		return ch, false
	}
	return ch, true
}

func sorted(ss []string) []string {
	out := slices.Clone(ss)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return out
}
