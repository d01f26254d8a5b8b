package authzen_test

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/wardenauthz/warden/authz/authzen"
)

type interopFile struct {
	Evaluation []struct {
		Request  json.RawMessage `json:"request"`
		Expected bool            `json:"expected"`
	} `json:"evaluation"`
	Evaluations []struct {
		Request  json.RawMessage `json:"request"`
		Expected []struct {
			Decision bool `json:"decision"`
		} `json:"expected"`
	} `json:"evaluations"`
}

// runInterop runs every case of an interop decision file through the
// AuthZEN listener, as the interop runners do (the runner's Authorization
// header: a token of the example's token file), and compares as they do:
// the decision of /evaluation, and the decisions of /evaluations item by
// item (the PEP token has no Explain grant: answers carry no context, so
// the runner's whole-array comparison holds too).
func runInterop(t *testing.T, file string, wantSingle, wantBatch int) {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f interopFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Evaluation) != wantSingle || len(f.Evaluations) != wantBatch {
		t.Fatalf("%s: %d evaluation and %d evaluations cases, want %d and %d", file, len(f.Evaluation), len(f.Evaluations), wantSingle, wantBatch)
	}
	p := startPDP(t, exampleConfig)
	pass := 0
	for i, c := range f.Evaluation {
		status, body := p.post(t, pepToken, authzen.PathEvaluation, []byte(c.Request))
		var got map[string]any
		if status != http.StatusOK || json.Unmarshal(body, &got) != nil {
			t.Errorf("evaluation[%d] %s: HTTP %d %s", i, c.Request, status, body)
			continue
		}
		if got["decision"] != c.Expected || len(got) != 1 {
			t.Errorf("evaluation[%d] %s: got %s, want decision %v", i, c.Request, body, c.Expected)
			continue
		}
		pass++
	}
	for i, c := range f.Evaluations {
		status, body := p.post(t, pepToken, authzen.PathEvaluations, []byte(c.Request))
		want, _ := json.Marshal(map[string]any{"evaluations": c.Expected})
		if status != http.StatusOK || string(body) != string(want)+"\n" {
			t.Errorf("evaluations[%d] %s: HTTP %d %s, want %s", i, c.Request, status, body, want)
			continue
		}
		pass++
	}
	t.Logf("%s: %d/%d cases pass", file, pass, len(f.Evaluation)+len(f.Evaluations))
	// Every evaluation went to the decision log as an AuthZEN record.
	items := len(f.Evaluation)
	for _, c := range f.Evaluations {
		items += len(c.Expected)
	}
	recs := p.recordsOf(t)
	if len(recs) != items {
		t.Errorf("%d decision records, want %d", len(recs), items)
	}
	for _, r := range recs {
		if r.Transport != "authzen" || r.Caller != "token:authzen-tokens:5" || r.Cedar == nil {
			t.Errorf("record %+v: want transport authzen, caller token:authzen-tokens:5, and its Cedar request", r)
			break
		}
	}
}

// The Todo scenario's 1.0 decision file passes 100% through the example.
func TestInteropTodo(t *testing.T) {
	runInterop(t, "testdata/interop/todo-decisions-authorization-api-1_0-02.json", 40, 3)
}

// The API gateway scenario's decision file passes 100% through the example.
func TestInteropGateway(t *testing.T) {
	runInterop(t, "testdata/interop/gateway-decisions.json", 25, 0)
}
