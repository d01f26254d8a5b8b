package policy

import (
	"encoding/json"
)

// ctxNeeds is what of the Cedar context a policy set can observe. Building
// the context is most of the cost of a decision (every cedar.NewRecord copies,
// sorts and hashes its keys), and most sets never read most of it: headers
// and query parameters above all. A Cedar policy can observe a record only
// through a literal attribute access (`.a`, `["a"]`, `has a`) or by using
// the record as a whole value (`==`, passing it on); it cannot enumerate
// keys. So the members no policy names, under no part of the context any
// policy uses whole, cannot change any decision, and are left out.
type ctxNeeds struct {
	all     bool            // the whole context is used as a value
	top     map[string]bool // top-level members needed in full
	request map[string]bool // context.request members needed
	reqAll  bool            // context.request is used as a value
}

func (n *ctxNeeds) wantTop(k string) bool { return n == nil || n.all || n.top[k] }

func (n *ctxNeeds) wantRequest() bool {
	return n == nil || n.all || n.reqAll || len(n.request) > 0
}

func (n *ctxNeeds) wantReq(k string) bool {
	return n == nil || n.all || n.reqAll || n.request[k]
}

// fullContext needs everything (used where the context is kept: replayable
// decision records).
var fullContext = &ctxNeeds{all: true}

func newCtxNeeds() *ctxNeeds {
	return &ctxNeeds{top: map[string]bool{}, request: map[string]bool{}}
}

// addPolicy records what the policy's JSON form (Cedar's EST) reads from the
// context. Anything it cannot read as a literal access counts as a use of
// the whole value it reaches, so the analysis errs towards keeping members.
func (n *ctxNeeds) addPolicy(est []byte) error {
	var v any
	if err := json.Unmarshal(est, &v); err != nil {
		return err
	}
	n.walk(v)
	return nil
}

func (n *ctxNeeds) walk(v any) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			n.walk(e)
		}
	case map[string]any:
		if path, ok := contextPath(v); ok {
			n.use(path)
			return
		}
		for _, e := range v {
			n.walk(e)
		}
	}
}

// contextPath reports whether node is `context` followed by literal accesses
// (`.` or `has`), and the attribute names in order.
func contextPath(node map[string]any) ([]string, bool) {
	if len(node) != 1 {
		return nil, false
	}
	if name, ok := node["Var"].(string); ok {
		return nil, name == "context"
	}
	for _, op := range []string{".", "has"} {
		inner, ok := node[op].(map[string]any)
		if !ok {
			continue
		}
		left, lok := inner["left"].(map[string]any)
		attr, aok := inner["attr"].(string)
		if !lok || !aok || len(inner) != 2 {
			return nil, false
		}
		path, ok := contextPath(left)
		if !ok {
			return nil, false
		}
		return append(path, attr), true
	}
	return nil, false
}

// use marks path as read (the value there may be used whole).
func (n *ctxNeeds) use(path []string) {
	switch {
	case len(path) == 0:
		n.all = true
	case path[0] != "request":
		n.top[path[0]] = true
	case len(path) == 1:
		n.reqAll = true
	default:
		n.request[path[1]] = true
	}
}

// contextNeeds is what the policies read of the context; on any surprise it
// is the whole context.
func contextNeeds(ps []*compiled) *ctxNeeds {
	n := newCtxNeeds()
	for _, c := range ps {
		if c.forbid && c.stepAge >= 0 { // staleAuth reads them
			n.use([]string{"token"})
			n.use([]string{"now"})
		}
		est, err := c.policy.MarshalJSON()
		if err != nil || n.addPolicy(est) != nil {
			return fullContext
		}
	}
	return n
}
