package policy

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkLoadLarge loads 10,000 policies with 100,000 entities (the
// memory budget's set; warden-bench -mode memory measures the whole
// server's RSS) and reports the live heap the set keeps.
func BenchmarkLoadLarge(b *testing.B) {
	var src strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&src, "@id(\"t%d\")\npermit (principal in Group::\"team-%d\", action == Action::\"GET /a/{id}\", resource in Service::\"svc-%d\") when { context.source.ip.isInRange(ip(\"10.%d.0.0/16\")) };\n", i, i, i%50, i%250)
	}
	ents := make([]map[string]any, 0, 100000)
	for i := range 100000 {
		ents = append(ents, map[string]any{"uid": map[string]string{"type": "User", "id": fmt.Sprintf("m-%d", i)},
			"parents": []map[string]string{{"type": "Group", "id": fmt.Sprintf("team-%d", i%1000)}}, "attrs": map[string]any{"level": i % 7}})
	}
	eb, err := json.Marshal(ents)
	if err != nil {
		b.Fatal(err)
	}
	files := map[string]string{"p.cedar": src.String(), EntitiesFile: string(eb)}
	for b.Loop() {
		if _, err := load(b, files, propRoutes...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	set, _ := load(b, files, propRoutes...)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(set)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MB-live")
}
