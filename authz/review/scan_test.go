package review

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// TestScanRawSources: the file sink (with rotated backups), the Redis
// stream sink and the in-memory ring (through paging) each give every
// record of the window exactly once, and none before it.
func TestScanRawSources(t *testing.T) {
	srv := redistest.Start(t)
	c := ratelimit.NewRedisClient(&redis.UniversalOptions{Addrs: []string{srv.Addr}}, time.Second)
	defer c.Close()
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	file := &lumberjack.Logger{Filename: path, MaxSize: 1, MaxBackups: 10} // rotates every MB
	ring := decisionlog.NewRing(10000, 0)
	log := decisionlog.New(decisionlog.Options{Size: 100000, Keep: ring, Sinks: []decisionlog.LineSink{
		decisionlog.WriterSink(file), decisionlog.NewRedisStreamSink(c, decisionlog.RedisStreamOptions{Stream: "s", MaxLen: 1_000_000}),
	}})
	now := time.Now()
	const n = 6000
	for i := range n {
		// The first third is older than the window.
		at := now.Add(-48*time.Hour + time.Duration(i)*24*time.Hour/n*3/2)
		log.Record(&decisionlog.Record{Time: at, DecisionID: fmt.Sprintf("d%05d", i), Decision: "allow", Policies: []string{"p"},
			Principal: `User::"corp|u"`, Detail: fmt.Sprintf("%0200d", i)})
	}
	if err := log.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l, err := c.XLen(context.Background(), "s").Result(); err != nil || l != n {
		t.Fatalf("stream length %d, %v", l, err)
	}
	since := now.Add(-24 * time.Hour)
	want := 0
	for i := range n {
		if !now.Add(-48*time.Hour + time.Duration(i)*24*time.Hour/n*3/2).Before(since) {
			want++
		}
	}
	if files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*")); len(files) < 2 {
		t.Fatalf("the file sink did not rotate: %v", files)
	}
	for _, src := range []decisionlog.LogSource{&decisionlog.FileSource{Path: path}, &decisionlog.StreamSource{Client: c, Stream: "s"}, ring} {
		seen := map[string]bool{}
		err := decisionlog.ScanRaw(context.Background(), src, since, func(line []byte) error {
			seen[string(line)] = true
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", src.Kind(), err)
		}
		if len(seen) != want {
			t.Errorf("%s: %d records in the window, want %d", src.Kind(), len(seen), want)
		}
	}
}
