package server

import (
	"context"
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/testwait"
)

func (l *streamLimit) openStreams() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// TestStreamSlotUnderClientDeadline: a stream whose own deadline (Envoy's
// grpc-timeout) comes before stream_timeout keeps that deadline and no
// other, gives its slot back when it ends or when its handler returns, and
// costs fewer allocations than one that needs stream_timeout's (issue 18:
// no context of its own).
func TestStreamSlotUnderClientDeadline(t *testing.T) {
	l := &streamLimit{max: 1, reserve: 1, timeout: time.Hour, byConn: map[any]int{}}
	ok := func(context.Context, any) (any, error) { return nil, nil }

	// Its deadline is the stream's; its end gives the slot back.
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	ctx, err := l.tap(parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := parent.Deadline()
	if got, has := ctx.Deadline(); !has || !got.Equal(want) {
		t.Errorf("deadline %v (%v), want the stream's %v", got, has, want)
	}
	if l.openStreams() != 1 {
		t.Fatalf("%d streams open, want 1", l.openStreams())
	}
	cancel()
	testwait.Until(t, 5*time.Second, "the slot back at the stream's end", func() bool { return l.openStreams() == 0 })
	if ctx.Err() == nil {
		t.Error("the stream ended, its context did not")
	}

	// Its handler's return gives the slot back at once.
	parent, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx, err = l.tap(parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.handled(ctx, nil, nil, ok); err != nil || l.openStreams() != 0 {
		t.Fatalf("after the handler: %d streams open (%v)", l.openStreams(), err)
	}

	// A stream without a deadline, or with a later one, gets stream_timeout's.
	for _, p := range []func() (context.Context, context.CancelFunc){
		func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
		func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 2*time.Hour)
		},
	} {
		parent, cancel := p()
		ctx, err := l.tap(parent, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d, has := ctx.Deadline(); !has || time.Until(d) > time.Hour {
			t.Errorf("deadline %v (%v), want within stream_timeout", d, has)
		}
		_, _ = l.handled(ctx, nil, nil, ok)
		cancel()
	}

	cost := func(p func() (context.Context, context.CancelFunc)) float64 {
		return testing.AllocsPerRun(100, func() {
			parent, cancel := p()
			ctx, err := l.tap(parent, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = l.handled(ctx, nil, nil, ok)
			cancel()
		})
	}
	under := cost(func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Minute)
	})
	over := cost(func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 2*time.Hour)
	})
	t.Logf("allocations per stream: %v under the client's deadline, %v under stream_timeout's", under, over)
	if under >= over-2 {
		t.Errorf("%v allocations per stream under the client's deadline, %v under stream_timeout's: want fewer", under, over)
	}
}
