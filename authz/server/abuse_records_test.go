package server_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/abusetest"
	"github.com/wardenauthz/warden/internal/testwait"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// longPathFlood sends n anonymous Checks with paths of size bytes from 8
// goroutines: even ones to the public catalog (allowed, the whole path a
// route parameter), odd ones to the orders (denied, credentials required).
// Every answer must be the right one.
func longPathFlood(t *testing.T, e *env, n, size int) {
	t.Helper()
	tail := strings.Repeat("x", size) // not hex: a credential shape would be redacted, not cut
	reqs := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range reqs {
				path, want := "/catalog/search/"+strconv.Itoa(i)+tail, 0
				if i%2 == 1 {
					path, want = "/v1/orders/"+strconv.Itoa(i)+tail, 401
				}
				req, err := checkreq.Build(checkreq.HTTP{Method: "GET", URL: "https://api.example.com" + path})
				if err != nil {
					errs <- err
					return
				}
				resp, err := e.client.Check(context.Background(), req)
				if err != nil {
					errs <- err
					return
				}
				if got := int(resp.GetDeniedResponse().GetStatus().GetCode()); got != want {
					errs <- fmt.Errorf("request %d: status %d, want %d (0: allowed)", i, got, want)
					return
				}
			}
		}()
	}
	func() {
		defer close(reqs)
		for i := range n {
			select {
			case reqs <- i:
			case err := <-errs:
				t.Fatal(err)
			}
		}
	}()
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// drained waits (at most 10 s) until the decision log has written out its
// buffer.
func drained(t *testing.T, l *decisionlog.DecisionLog) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, b := l.Buffered(); n == 0 && b == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the decision log never drained")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func anonymousReplayable(c *config.Config) {
	yes := true
	c.Identity.Anonymous = &yes
	c.DecisionLog.Replayable = true // the heaviest records: the Cedar request too
}

// TestAbuseLongPaths: anonymous Checks with 60 KB paths (the issue-16
// flood: 12,000 of them took the heap from 5 MB to 1.7 GB) leave the heap
// within 64 MiB of where it was, with the in-memory ring (the admin API's
// source) and the asynchronous log holding them; every answer stays right,
// and the records are cut and marked truncated.
func TestAbuseLongPaths(t *testing.T) {
	n := abusetest.Count(600, 12000)
	e := start(t, anonymousReplayable)
	longPathFlood(t, e, 20, 60<<10) // warm up: connections, caches, pools
	drained(t, e.svc.Log)
	before := abusetest.Measure()
	longPathFlood(t, e, n, 60<<10)
	drained(t, e.svc.Log)
	abusetest.Check(t, fmt.Sprintf("%d Checks with 60 KB paths", n), before, abusetest.Measure(), abusetest.Budget{Heap: 64 * abusetest.MiB})
	ring, ok := e.svc.Logs.(*decisionlog.Ring)
	if !ok {
		t.Fatalf("the admin API's source is %T, not the in-memory ring", e.svc.Logs)
	}
	recs, bytes := ring.Len()
	if max := e.svc.Config.DecisionLog.MemoryBytes; bytes > max {
		t.Errorf("ring holds %d bytes, over memory_bytes %d", bytes, max)
	}
	got, _, err := ring.Query(context.Background(), decisionlog.Filter{}, 10, "")
	if err != nil || len(got) == 0 {
		t.Fatalf("ring: %d records, %v", recs, err)
	}
	for _, r := range got {
		if !r.Truncated || len(r.Request.Path) > e.svc.Config.DecisionLog.MaxFieldBytes || r.Cedar != nil {
			t.Fatalf("record not bounded: truncated %v, path %d bytes, cedar %v", r.Truncated, len(r.Request.Path), r.Cedar != nil)
		}
	}
}

// TestAbuseLongPathsRedis: the same flood with the Redis store and the
// redis_stream sink (the issue: 1,500 of them took Redis from 77 MB to
// 545 MB, max_len counting records) grows Redis by less than max_len ×
// max_record_bytes, and every stream entry is within max_record_bytes.
func TestAbuseLongPathsRedis(t *testing.T) {
	n := abusetest.Count(600, 12000)
	const maxLen = 1000
	srv := redistest.Start(t)
	e := start(t, anonymousReplayable, func(c *config.Config) {
		c.Store.Kind = "redis"
		c.Store.Redis.Addrs = []string{srv.Addr}
		c.DecisionLog.Sinks = []config.Sink{{Kind: "redis_stream", Stream: "warden:decisions", MaxLen: maxLen}}
	})
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	used := func() int64 {
		info, err := rc.InfoMap(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	longPathFlood(t, e, 20, 60<<10)
	drained(t, e.svc.Log)
	before := used()
	longPathFlood(t, e, n, 60<<10)
	drained(t, e.svc.Log)
	// the last burst's pipeline: measured before it lands, the growth
	// would look smaller than it is
	testwait.Until(t, 5*time.Second, "the records never reached the stream", func() bool {
		return rc.XLen(ctx, "warden:decisions").Val() >= min(int64(n), maxLen)
	})
	after := used()
	maxRecord := e.svc.Config.DecisionLog.MaxRecordBytes
	budget := int64(maxLen * maxRecord)
	t.Logf("%d Checks with 60 KB paths: Redis used_memory %d KiB -> %d KiB (budget %d KiB)", n, before>>10, after>>10, budget>>10)
	if after-before > budget {
		t.Errorf("Redis grew by %d KiB, over max_len × max_record_bytes = %d KiB", (after-before)>>10, budget>>10)
	}
	entries, err := rc.XRevRangeN(ctx, "warden:decisions", "+", "-", 100).Result()
	if err != nil || len(entries) == 0 {
		t.Fatalf("stream: %d entries, %v", len(entries), err)
	}
	for _, m := range entries {
		s, _ := m.Values[decisionlog.StreamField].(string)
		if len(s) > maxRecord || !strings.Contains(s, `"truncated":true`) {
			t.Fatalf("stream entry of %d bytes (max_record_bytes %d), truncated mark: %v", len(s), maxRecord, strings.Contains(s, `"truncated":true`))
		}
	}
}

// TestAbuseRecordShapes: the other shapes of a heavy record, each within
// the limits Envoy lets through (server.limits), flooded at the in-memory
// ring with replayable records: many medium headers, thousands of tiny
// query parameters (many small Cedar values), long context extensions, a
// long host. The heap stays within 64 MiB of where it was, and within
// twice what the ring counts its new records at (plus 8 MiB): the ring's
// byte bound is a bound on memory only if its estimates are. Every answer
// is right.
func TestAbuseRecordShapes(t *testing.T) {
	n := abusetest.Count(150, 4000)
	medium := strings.Repeat("m", 900)
	var query, small strings.Builder
	for i := range 4000 {
		fmt.Fprintf(&query, "&q%d=%d", i, i)
	}
	for i := range 400 { // a Cedar section of many small values that fits in a record
		fmt.Fprintf(&small, "&%d=", i)
	}
	ext := map[string]string{}
	for i := range 64 {
		ext["e"+strconv.Itoa(i)] = medium
	}
	var headers []string
	for i := range 90 {
		headers = append(headers, fmt.Sprintf("x-h%d: %s", i, medium))
	}
	shapes := map[string]checkreq.HTTP{
		"medium headers":     {URL: "https://api.example.com/catalog/search/x", Headers: headers},
		"tiny query params":  {URL: "https://api.example.com/catalog/search/x?" + query.String()[1:]},
		"small query params": {URL: "https://api.example.com/catalog/search/x?" + small.String()[1:]},
		"long extensions":    {URL: "https://api.example.com/catalog/search/x", ContextExtensions: ext},
		"long host":          {URL: "https://" + strings.Repeat("h", 60<<10) + ".example.com/catalog/search/x"},
	}
	e := startOpts(t, oidctest.New(t), server.Options{Stdout: io.Discard, FullContext: true}, anonymousReplayable)
	ring := e.svc.Logs.(*decisionlog.Ring)
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		h := shapes[name]
		req, err := checkreq.Build(h)
		if err != nil {
			t.Fatal(err)
		}
		flood := func(n int) {
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += 4 {
						resp, err := e.client.Check(context.Background(), req)
						if err != nil {
							t.Error(err)
							return
						}
						if resp.GetOkResponse() == nil {
							t.Errorf("%s: denied %d, want allowed", name, resp.GetDeniedResponse().GetStatus().GetCode())
							return
						}
					}
				}()
			}
			wg.Wait()
		}
		flood(10)
		drained(t, e.svc.Log)
		before := abusetest.Measure()
		_, ringBefore := ring.Len()
		flood(n)
		drained(t, e.svc.Log)
		after := abusetest.Measure()
		_, ringAfter := ring.Len()
		growth, counted := int64(after.Heap)-int64(before.Heap), int64(ringAfter-ringBefore)
		t.Logf("%s: %d Checks: the ring counts %+d KiB", name, n, counted>>10)
		abusetest.Check(t, name, before, after, abusetest.Budget{Heap: 64 * abusetest.MiB})
		if growth > 2*max(counted, 0)+8<<20 {
			t.Errorf("%s: heap grew by %d KiB, the ring counts %d KiB: its byte bound does not bound memory", name, growth>>10, counted>>10)
		}
	}
}
