package authz

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/wardenauthz/warden/policy"
)

// BenchmarkParseInput: parseInput on Envoy's samples as the wire decoder
// reads them (its header slices copied fresh each time: parseInput sorts
// them in place).
func BenchmarkParseInput(b *testing.B) {
	var ins []*checkInput
	for _, s := range envoySamples(b) {
		ci, _, err := decodeCheckRequest(s, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		ins = append(ins, ci)
	}
	now := time.Unix(1_700_000_000, 0)
	var work checkInput
	var hs, hm []policy.Header
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ci := ins[i%len(ins)]
		work = *ci
		hs, hm = append(hs[:0], ci.headers...), append(hm[:0], ci.headerMap...)
		work.headers, work.headerMap = hs, hm
		parseInput(&work, now, Limits{})
	}
}

// sameParse holds parseInput to parseInputOld on ci (each on its own copy
// of the header slices, which both sort in place), within l.
func sameParse(t *testing.T, ci *checkInput, l Limits) {
	t.Helper()
	now := time.Unix(1_700_000_000, 0)
	a, b := *ci, *ci
	a.headers, a.headerMap = slices.Clone(ci.headers), slices.Clone(ci.headerMap)
	b.headers, b.headerMap = slices.Clone(ci.headers), slices.Clone(ci.headerMap)
	got, want := parseInput(&a, now, l), parseInputOld(&b, now, l)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseInput differs from the old one:\n got %+v\nwant %+v", got, want)
	}
}

// FuzzParseInput: parseInput equals parseInputOld on whatever the wire
// decoder reads, within and over the header limits.
func FuzzParseInput(f *testing.F) {
	addCheckRequestSeeds(f, 5)
	f.Fuzz(func(t *testing.T, b []byte) {
		ci, _, err := decodeCheckRequest(bytes.Clone(b), Limits{})
		if err != nil {
			return
		}
		sameParse(t, ci, Limits{})
		sameParse(t, ci, Limits{MaxHeaders: 4, MaxHeaderBytes: 64})
	})
}

// TestParseInputMatchesOld: random header lists in both of Envoy's forms,
// their names drawn from few, case-varied spellings (so that names repeat,
// tie after lower-casing, and include the six the pipeline reads), against
// the old parseInput.
func TestParseInputMatchesOld(t *testing.T) {
	names := []string{":method", ":path", ":authority", ":scheme", "x-request-id", "authorization", "Authorization",
		"AUTHORIZATION", ":Path", "X-Request-Id", "accept", "Accept", "a", "A", "", "x-a", "X-A", "cookie"}
	values := []string{"", "GET", "/p?q=1", "h.example", "https", "id-1", "Bearer x", "v", "V", "1,2"}
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 5000 {
		n := r.IntN(24)
		hs := make([]policy.Header, n)
		for j := range hs {
			hs[j] = policy.Header{Name: names[r.IntN(len(names))], Value: values[r.IntN(len(values))]}
		}
		ci := &checkInput{hasHTTP: true, method: values[r.IntN(3)], path: values[r.IntN(3)], headerCount: n}
		if i%2 == 0 {
			ci.headerMap = hs
		} else {
			// The map form: distinct keys (they may still tie once lower-cased).
			seen := map[string]bool{}
			for _, h := range hs {
				if !seen[h.Name] {
					seen[h.Name] = true
					ci.headers = append(ci.headers, h)
				}
			}
			ci.headerCount = len(ci.headers)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { sameParse(t, ci, Limits{}) })
	}
}
