package authzen

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/policy"
)

// Search bounds: results per page, and candidates evaluated per page (a
// page may end early, with a next_token, when the latter is reached).
const (
	DefaultSearchLimit = 50
	MaxSearchLimit     = 1000
	MaxSearchScan      = 10000
)

type searchKind int

const (
	searchSubject searchKind = iota
	searchResource
	searchAction
)

type pageJSON struct {
	Token *string      `json:"token"`
	Limit *json.Number `json:"limit"`
}

type searchJSON struct {
	evalJSON
	Page *pageJSON `json:"page"`
}

// searchResult is a subject or resource ({type, id}) or an action ({name}).
type searchResult struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

type pageOut struct {
	NextToken string `json:"next_token"`
	Count     int    `json:"count"`
}

// search answers a Search API: the entities of the asked type (subject or
// resource) that Warden knows (entities.json), or the actions it knows,
// for which the evaluation would be a permit, in id order. Searches are
// not written to the decision log (each is many evaluations).
func (h *Handler) search(kind searchKind) func(http.ResponseWriter, *call, []byte) {
	return func(w http.ResponseWriter, c *call, body []byte) {
		var q searchJSON
		if err := decode(body, &q, ""); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		// Complete the searched member so the usual checks apply.
		placeholder := ""
		switch kind {
		case searchSubject:
			if q.Subject != nil && q.Subject.Type != nil {
				q.Subject.ID = &placeholder
			}
		case searchResource:
			if q.Resource != nil && q.Resource.Type != nil {
				q.Resource.ID = &placeholder
			}
		case searchAction:
			q.Action = &actionJSON{Name: new(string)}
			*q.Action.Name = "-"
		}
		if err := q.required(""); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		limit := DefaultSearchLimit
		var token string
		if q.Page != nil {
			if q.Page.Limit != nil {
				n, err := strconv.Atoi(q.Page.Limit.String())
				if err != nil || n < 0 {
					fail(w, http.StatusBadRequest, "page.limit: must be a non-negative integer")
					return
				}
				limit = min(n, MaxSearchLimit)
			}
			if q.Page.Token != nil {
				token = *q.Page.Token
			}
		}
		base, err := h.toCedar(&q.evalJSON, "")
		if err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		// The query's fingerprint: the request without its token.
		tokenless := q
		if q.Page != nil {
			p := *q.Page
			p.Token = nil
			tokenless.Page = &p
		}
		fp := fingerprint(tokenless)
		start := 0
		if token != "" {
			start, err = parseToken(token, fp)
			if err != nil {
				fail(w, http.StatusBadRequest, "page.token: "+err.Error())
				return
			}
		}
		set := h.o.Authorizer.PolicySet()
		var cands []cedar.EntityUID
		switch kind {
		case searchSubject:
			cands = set.EntitiesOfType(base.Principal.UID.Type)
		case searchResource:
			cands = set.EntitiesOfType(base.Resource.UID.Type)
		case searchAction:
			cands = set.EntitiesOfType("Action")
		}
		results := []searchResult{}
		i := start
		for scanned := 0; i < len(cands) && len(results) < limit && scanned < MaxSearchScan; i, scanned = i+1, scanned+1 {
			req := *base
			switch kind {
			case searchSubject:
				req.Principal = policy.EvalEntity{UID: cands[i], Attrs: base.Principal.Attrs}
			case searchResource:
				req.Resource = policy.EvalEntity{UID: cands[i], Attrs: base.Resource.Attrs}
			case searchAction:
				req.Action = cands[i]
			}
			if !set.Evaluate(&req).Allow {
				continue
			}
			switch kind {
			case searchSubject:
				results = append(results, searchResult{Type: *q.Subject.Type, ID: string(cands[i].ID)})
			case searchResource:
				results = append(results, searchResult{Type: *q.Resource.Type, ID: string(cands[i].ID)})
			case searchAction:
				results = append(results, searchResult{Name: string(cands[i].ID)})
			}
		}
		next := ""
		if i < len(cands) {
			next = makeToken(i, fp)
		}
		writeJSON(w, struct {
			Page    pageOut        `json:"page"`
			Results []searchResult `json:"results"`
		}{pageOut{NextToken: next, Count: len(results)}, results})
	}
}

func fingerprint(v any) [8]byte {
	b, _ := json.Marshal(v) // maps marshal with sorted keys: canonical
	sum := sha256.Sum256(b)
	var fp [8]byte
	copy(fp[:], sum[:8])
	return fp
}

// A token is the position to resume from and the query's fingerprint, so
// that a token used with another query is refused. It is not a secret:
// a forged position only skips candidates of the caller's own query.
func makeToken(pos int, fp [8]byte) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(pos))
	copy(b[8:], fp[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func parseToken(t string, fp [8]byte) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(b) != 16 {
		return 0, fmt.Errorf("not a token this PDP issued")
	}
	if [8]byte(b[8:]) != fp {
		return 0, fmt.Errorf("the query changed since the token was issued: send the same subject, action, resource, context and page.limit")
	}
	pos := binary.BigEndian.Uint64(b[:8])
	if pos > 1<<31 {
		return 0, fmt.Errorf("not a token this PDP issued")
	}
	return int(pos), nil
}
