package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/redis/go-redis/v9"
)

// Concurrent Takes share round trips: each queues its buckets, and a few
// batchers each send whatever is queued as one pipeline, then answer every
// Take in it. While a pipeline is out, the next one fills, so under load
// a round trip (two syscalls here and in Redis) carries many Checks' GCRA
// calls; alone, a Take goes out at once. At most MaxInflight Takes are
// outstanding (queued, or in a pipeline, their Take answered at its
// deadline or not); past that a Take fails at once with ErrBusy.
const (
	batchers = 2   // pipelines out at once
	maxBatch = 128 // Takes in one pipeline

	maxYields = 4 // times a batcher lets others run while its queue grows
)

// take is one Take waiting for its batch.
type take struct {
	ctx     context.Context // done when the Take gave up: left out of its batch
	buckets []Bucket
	done    chan takeResult // buffered: a batcher never waits on it
}

type takeResult struct {
	outs []Outcome
	err  error
}

// Take implements Counter.
func (r *Redis) Take(ctx context.Context, _ time.Time, buckets []Bucket) ([]Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	select {
	case r.inflight <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	r.batchOnce.Do(r.startBatchers)
	t := &take{ctx: ctx, buckets: buckets, done: make(chan takeResult, 1)}
	r.queue <- t // never blocks: the queue holds MaxInflight
	select {
	case res := <-t.done:
		return res.outs, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("redis: %w", context.Cause(ctx))
	}
}

func (r *Redis) startBatchers() {
	for range batchers {
		go r.batcher()
	}
}

// batcher sends the queued Takes, a batch at a time, until Close.
func (r *Redis) batcher() {
	batch := make([]*take, 0, maxBatch)
	for {
		select {
		case t := <-r.queue:
			batch = append(batch[:0], t)
		case <-r.closed:
			return
		}
		// Let the Checks that are ready to run queue their Takes first:
		// with one P, the Take that woke this batcher runs it next, ahead
		// of them, and without yielding a pipeline carried 1.2 Takes on
		// average under load (9.7 with it). Alone, a Take still goes out
		// at once: with nothing else to run, Gosched returns at once and
		// the queue does not grow.
		for i, prev := 0, -1; i < maxYields && len(r.queue) != prev; i++ {
			prev = len(r.queue)
			runtime.Gosched()
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case t := <-r.queue:
				batch = append(batch, t)
			default:
				break fill
			}
		}
		r.runBatch(batch)
		for range batch {
			<-r.inflight
		}
		clear(batch)
	}
}

// runBatch sends the live Takes of batch as one pipeline, bounded by
// store.redis.timeout, and answers each with its own buckets' outcomes or
// the first error among its commands. A script Redis does not have
// (NOSCRIPT: a restart, a failover) is loaded and those commands alone are
// sent again, so no bucket is counted twice.
func (r *Redis) runBatch(batch []*take) {
	live := batch[:0:0]
	n := 0
	for _, t := range batch {
		if t.ctx.Err() == nil {
			live = append(live, t)
			n += len(t.buckets)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.o.Timeout)
	defer cancel()
	cmds := make([]*redis.Cmd, 0, n)
	for _, t := range live {
		for _, b := range t.buckets {
			cmds = append(cmds, gcraCmd(ctx, b))
		}
	}
	r.exec(ctx, cmds)
	if retry := noScript(cmds); len(retry) > 0 {
		again := make([]*redis.Cmd, len(retry))
		for k, i := range retry {
			cmds[i] = redis.NewCmd(ctx, cmds[i].Args()...)
			again[k] = cmds[i]
		}
		if err := gcraScript.Load(ctx, r.c).Err(); err != nil {
			for _, c := range again {
				c.SetErr(err)
			}
		} else {
			r.exec(ctx, again)
		}
	}
	i := 0
	for _, t := range live {
		outs, err := outcomes(t.buckets, cmds[i:i+len(t.buckets)])
		i += len(t.buckets)
		t.done <- takeResult{outs, err}
	}
}

func gcraCmd(ctx context.Context, b Bucket) *redis.Cmd {
	return redis.NewCmd(ctx, "evalsha", gcraScript.Hash(), 1, rlPrefix+b.Key+"}",
		b.Interval.Microseconds(), b.Tolerance.Microseconds())
}

// exec sends cmds as one pipeline; each command holds its own reply or
// error (a failed connection fails them all).
func (r *Redis) exec(ctx context.Context, cmds []*redis.Cmd) {
	pipe := r.c.Pipeline()
	for _, c := range cmds {
		_ = pipe.Process(ctx, c)
	}
	_, _ = pipe.Exec(ctx) // go-redis sets a failed round trip's error on every command
}

func noScript(cmds []*redis.Cmd) []int {
	var idx []int
	for i, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			idx = append(idx, i)
		}
	}
	return idx
}

// outcomes reads one Take's GCRA replies.
func outcomes(buckets []Bucket, cmds []*redis.Cmd) ([]Outcome, error) {
	outs := make([]Outcome, len(buckets))
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return nil, err
		}
		v, err := cmd.Int64Slice()
		if err != nil || len(v) != 3 {
			return nil, fmt.Errorf("gcra: unexpected reply %v: %w", cmd.Val(), err)
		}
		b := buckets[i]
		o := Outcome{Allowed: v[0] == 1, RetryAfter: time.Duration(v[1]) * time.Microsecond, Reset: time.Duration(v[2]) * time.Microsecond}
		if o.Allowed {
			o.Remaining = int((b.Tolerance - o.Reset) / b.Interval)
		}
		outs[i] = o
	}
	return outs, nil
}
