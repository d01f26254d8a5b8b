package decisionlog_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// addBetweenReads adds a record to the stream after each XREAD that found
// nothing, before the next one begins (a record logged between two reads).
type addBetweenReads struct {
	add   func(n int)
	added int
}

func (h *addBetweenReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *addBetweenReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *addBetweenReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if strings.EqualFold(cmd.Name(), "xread") && err == redis.Nil && h.added < 3 {
			h.added++
			h.add(h.added)
		}
		return err
	}
}

// TestStreamFollowBetweenReads: a record added to the stream between two of
// Follow's blocking reads is reported (with "$" in each read it was
// skipped: "$" names the end as the read begins).
func TestStreamFollowBetweenReads(t *testing.T) {
	srv := redistest.Start(t)
	writer := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Addr})
	defer writer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	add := func(n int) {
		b := fmt.Sprintf(`{"time":"2026-06-02T14:30:00Z","decision_id":"%032x","decision":"allow","status":200}`, n)
		if err := writer.XAdd(ctx, &redis.XAddArgs{Stream: "decisions", Values: []any{decisionlog.StreamField, b}}).Err(); err != nil {
			t.Error(err)
		}
	}
	add(100) // before Follow: not reported
	reader := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Addr})
	defer reader.Close()
	reader.AddHook(&addBetweenReads{add: add})
	src := &decisionlog.StreamSource{Client: reader, Stream: "decisions"}
	got := make(chan string, 8)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- src.Follow(fctx, decisionlog.Filter{}, func(r *decisionlog.Record) { got <- r.DecisionID })
	}()
	for n := 1; n <= 2; n++ {
		select {
		case id := <-got:
			if want := fmt.Sprintf("%032x", n); id != want {
				t.Errorf("record %d: %s, want %s", n, id, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("record %d, added between two reads, was not reported", n)
		}
	}
	stop()
	<-done
}
