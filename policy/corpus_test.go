package policy_test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/policy"
)

// corpusTest is one test of Cedar's integration corpus (cedar-go ships it
// as corpus-tests.tar.gz): a policy set, a schema, entities, requests.
type corpusTest struct {
	Policies, Entities, Schema string
	ShouldValidate             bool `json:"shouldValidate"`
	Requests                   []struct {
		Description string          `json:"description"`
		Principal   cedar.EntityUID `json:"principal"`
		Action      cedar.EntityUID `json:"action"`
		Resource    cedar.EntityUID `json:"resource"`
		Context     cedar.Record    `json:"context"`
		Decision    string          `json:"decision"`
		Reason      []string        `json:"reason"`
		Errors      []string        `json:"errors"`
	} `json:"requests"`
}

// corpusFiles reads cedar-go's corpus tarball from the module cache.
func corpusFiles(t *testing.T) map[string][]byte {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cedar-policy/cedar-go").Output()
	if err != nil {
		t.Skipf("cedar-go's module directory: %v", err)
	}
	tarball := filepath.Join(strings.TrimSpace(string(out)), "corpus-tests.tar.gz")
	if p := os.Getenv("WARDEN_CORPUS_TAR"); p != "" {
		tarball = p // another corpus, such as cedar-integration-tests'
	}
	f, err := os.Open(tarball)
	if err != nil {
		t.Skipf("corpus: %v", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg || h.Size > 1<<20 {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = b
	}
	return files
}

// withIDs gives each policy of a corpus file the @id Cedar names it by
// (policy0, policy1, ...), as Warden requires one.
func withIDs(b []byte) ([]byte, error) {
	list, err := cedar.NewPolicyListFromBytes("", b)
	if err != nil {
		return nil, err
	}
	var sb strings.Builder
	for i, p := range list {
		if _, ok := p.Annotations()["id"]; ok {
			return nil, errors.New("has its own @id")
		}
		fmt.Fprintf(&sb, "@id(\"policy%d\")\n%s\n", i, p.MarshalCedar())
	}
	return []byte(sb.String()), nil
}

// dirFiles reads the corpus tests kept in testdata.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	ents, err := os.ReadDir(filepath.Join(dir, "corpus-tests"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "corpus-tests", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files["corpus-tests/"+e.Name()] = b
	}
	return files
}

// TestCedarCorpus loads Cedar's integration tests as Warden policy
// directories (policies, schema.cedarschema, entities.json) and decides
// their requests as warden policy test does (Set.Authorize, Cedar's
// on_error), comparing decisions and reasons. Every entities.json must
// load: the Cedar CLI reads them all.
func TestCedarCorpus(t *testing.T) {
	// The shapes Warden refused (testdata/cedar-corpus/README.md): all.
	t.Run("refused-before", func(t *testing.T) {
		runCorpus(t, dirFiles(t, "testdata/cedar-corpus"), 1, 5)
	})
	// cedar-go's copy of the corpus: a tenth (WARDEN_CORPUS_ALL=1: all).
	t.Run("corpus", func(t *testing.T) {
		step := 10
		if os.Getenv("WARDEN_CORPUS_ALL") != "" {
			step = 1
		}
		runCorpus(t, corpusFiles(t), step, 700)
	})
}

// runCorpus runs every step-th corpus test of files; at least min must load.
func runCorpus(t *testing.T, files map[string][]byte, step, min int) {
	var names []string
	for n := range files {
		if strings.HasSuffix(n, ".json") && !strings.HasSuffix(n, ".entities.json") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var loaded, skipped, requests, passed int
	var entityErrs []string
	for i := 0; i < len(names); i += step {
		var ct corpusTest
		if err := json.Unmarshal(files[names[i]], &ct); err != nil {
			t.Fatalf("%s: %v", names[i], err)
		}
		pol, err := withIDs(files[ct.Policies])
		if err != nil {
			skipped++
			continue
		}
		fsys := fstest.MapFS{
			"p/policies.cedar":         {Data: pol},
			"p/" + policy.EntitiesFile: {Data: files[ct.Entities]},
		}
		if ct.ShouldValidate || os.Getenv("WARDEN_CORPUS_SCHEMA") != "" {
			fsys["p/"+policy.SchemaFile] = &fstest.MapFile{Data: files[ct.Schema]}
		}
		set, err := policy.Load(policy.Source{FS: fsys, Dir: "p", Name: names[i], SkipErrors: true}, nil)
		if err != nil {
			if strings.Contains(err.Error(), policy.EntitiesFile) {
				entityErrs = append(entityErrs, names[i]+": "+err.Error())
			}
			if os.Getenv("WARDEN_CORPUS_SHOW") != "" {
				t.Logf("%s: %v", names[i], err)
			}
			skipped++
			continue
		}
		loaded++
		for _, r := range ct.Requests {
			requests++
			res := set.Authorize(nil, cedar.Request{Principal: r.Principal, Action: r.Action, Resource: r.Resource, Context: r.Context})
			got := "deny"
			if res.Allow {
				got = "allow"
			}
			reasons := slices.Clone(res.Reasons)
			want := slices.Clone(r.Reason)
			slices.Sort(reasons)
			slices.Sort(want)
			if got == r.Decision && slices.Equal(reasons, want) {
				passed++
			} else {
				t.Errorf("%s %s: got %s %v, want %s %v", names[i], r.Description, got, reasons, r.Decision, want)
			}
		}
	}
	t.Logf("%d corpus tests loaded, %d not (policy or schema Warden refuses), %d/%d requests as Cedar decides", loaded, skipped, passed, requests)
	if loaded < min {
		t.Errorf("only %d corpus tests loaded, want at least %d", loaded, min)
	}
	for _, e := range entityErrs {
		t.Errorf("entities.json refused:\n%s", e)
	}
}
