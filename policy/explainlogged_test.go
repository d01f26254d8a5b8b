package policy

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestExplainLoggedAgrees: the explanation of a logged request (the
// console's Explain page) concludes as Replay, and so as the live
// decision, decides it: over random sets and requests.
func TestExplainLoggedAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	explained, allowed := 0, 0
	for i := range 50 {
		m := mapFSOf()
		m["p/p.cedar"] = mapFSOf("p.cedar", genPolicies(r, 1+r.IntN(10)))["p.cedar"]
		m["p/"+EntitiesFile] = mapFSOf(EntitiesFile, propEntities)[EntitiesFile]
		s, err := Load(Source{FS: m, Dir: "p", Name: "policies", Replayable: true, AllowUnrouted: true}, propRoutes)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			live := s.Decide(genRequest(r))
			if live.Logged == nil {
				continue
			}
			j, _ := json.Marshal(live.Logged)
			var back Logged
			if err := json.Unmarshal(j, &back); err != nil {
				t.Fatal(err)
			}
			ex, err := s.ExplainLogged(&back)
			if err != nil {
				t.Fatal(err)
			}
			if err := ex.Agrees(live); err != nil {
				t.Fatalf("set %d: %v\nlogged: %s", i, err, j)
			}
			explained++
			if live.Allow {
				allowed++
			}
		}
	}
	if explained < 500 || allowed == 0 || allowed == explained {
		t.Errorf("explained %d requests, %d allowed: the test covers too little", explained, allowed)
	}
	if _, err := (&Set{}).ExplainLogged(&Logged{}); err == nil {
		t.Error("a logged request without principal, action and resource explained")
	}
}
