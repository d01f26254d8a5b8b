package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec sends pre-marshalled CheckRequests and keeps responses as bytes,
// so that the load generator spends its core on calls, not on protobuf. It
// is named "proto" so the server sees an ordinary application/grpc call.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append((*v.(*[]byte))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

// statusCode reads CheckResponse.status.code (fields 1 and 1) from the wire.
func statusCode(b []byte) (int32, bool) {
	inner, ok := field(b, 1, protowire.BytesType)
	if !ok {
		return 0, true // no status: OK
	}
	v, ok := field(inner, 1, protowire.VarintType)
	if !ok {
		return 0, true
	}
	c, n := protowire.ConsumeVarint(v)
	return int32(c), n > 0
}

// field returns the (last) value of field num with type typ.
func field(b []byte, num protowire.Number, typ protowire.Type) ([]byte, bool) {
	var out []byte
	found := false
	for len(b) > 0 {
		n, t, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, false
		}
		b = b[l:]
		vl := protowire.ConsumeFieldValue(n, t, b)
		if vl < 0 {
			return nil, false
		}
		if n == num && t == typ {
			out, found = b[:vl], true
			if t == protowire.BytesType {
				v, _ := protowire.ConsumeBytes(b)
				out = v
			}
		}
		b = b[vl:]
	}
	return out, found
}

// checkMode is how a target's answers are checked.
type checkMode int

const (
	checkNone checkMode = iota // any well-formed CheckResponse (the no-op, opa-empty)
	checkGRPC                  // status.code is the kind's want (Warden)
	checkHTTP                  // the HTTP status Envoy would send is the kind's wantHTTP (opa-rbac)
)

// right reports whether reply is the answer check expects for k.
func right(check checkMode, k *kind, reply []byte) bool {
	code, ok := statusCode(reply)
	switch {
	case !ok:
		return false
	case check == checkGRPC:
		return code == k.want
	case check == checkHTTP:
		h, ok := httpAnswer(reply)
		return ok && h == k.wantHTTP
	}
	return true
}

// loadResult is what one measured window saw.
type loadResult struct {
	calls, errors, wrong int64
	timeouts             int64 // of the errors, Checks past envoyTimeout
	elapsed              time.Duration
	latencies            []time.Duration // of the calls that completed inside the window
}

// load drives the target: conns connections, conc concurrent callers, at
// full speed (rate 0) or at rate requests per second, open loop (latency
// counts from when a request was due, so queueing is not hidden). It calls
// onStart when the warm-up ends and the window starts, onEnd when it ends.
func load(addr string, f *fixture, conns, conc int, rate float64, warmup, window time.Duration,
	check checkMode, onStart, onEnd func()) (*loadResult, error) {
	cs := make([]*grpc.ClientConn, conns)
	for i := range cs {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		if err != nil {
			return nil, err
		}
		defer c.Close()
		cs[i] = c
	}
	// The mix: a shuffled schedule of kinds by weight.
	var sched []int
	for i, k := range f.kinds {
		for range k.weight {
			sched = append(sched, i)
		}
	}
	rand.Shuffle(len(sched), func(i, j int) { sched[i], sched[j] = sched[j], sched[i] })

	ctx, cancel := context.WithTimeout(context.Background(), warmup+window+30*time.Second)
	defer cancel()
	var (
		measuring atomic.Bool
		stopping  atomic.Bool
		res       loadResult
		mu        sync.Mutex
		wg        sync.WaitGroup
	)
	var due chan time.Time
	if rate > 0 {
		due = make(chan time.Time, int(rate*(warmup+window).Seconds())+1)
		go func() {
			start := time.Now()
			interval := time.Duration(float64(time.Second) / rate)
			for i := 0; !stopping.Load(); {
				now := time.Now()
				for next := start.Add(time.Duration(i) * interval); !next.After(now); next = start.Add(time.Duration(i) * interval) {
					due <- next
					i++
				}
				time.Sleep(interval / 2)
			}
			close(due)
		}()
	}
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := cs[w%conns]
			var lat []time.Duration
			var calls, errs, timeouts, wrong int64
			var reply []byte
			n := w * 7919
			for !stopping.Load() {
				t0 := time.Now()
				if due != nil {
					var ok bool
					if t0, ok = <-due; !ok {
						break
					}
				}
				n++
				k := &f.kinds[sched[n%len(sched)]]
				req := k.reqs[(n/len(sched))%len(k.reqs)]
				cctx, ccancel := context.WithTimeout(ctx, envoyTimeout)
				err := conn.Invoke(cctx, checkMethod, &req, &reply)
				ccancel()
				d := time.Since(t0)
				if !measuring.Load() {
					continue
				}
				calls++
				lat = append(lat, d)
				switch {
				case err != nil:
					errs++
					if status.Code(err) == codes.DeadlineExceeded {
						timeouts++
					}
				case !right(check, k, reply):
					wrong++
				}
			}
			mu.Lock()
			res.calls += calls
			res.errors += errs
			res.timeouts += timeouts
			res.wrong += wrong
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		}()
	}
	time.Sleep(warmup)
	onStart()
	t0 := time.Now()
	measuring.Store(true)
	time.Sleep(window)
	measuring.Store(false)
	res.elapsed = time.Since(t0)
	onEnd()
	stopping.Store(true)
	wg.Wait()
	slices.Sort(res.latencies)
	if res.calls == 0 {
		return nil, fmt.Errorf("no call completed in the window")
	}
	return &res, nil
}

// envoyTimeout is every Check's deadline, sent as grpc-timeout, as Envoy
// sends its ext_authz filter's timeout (0.25s in envoy/front-proxy and
// the Istio kit; Envoy's default is 0.2s). A Check past it is an error,
// as Envoy would answer it with status_on_error.
const envoyTimeout = 250 * time.Millisecond

// percentile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
