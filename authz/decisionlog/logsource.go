package decisionlog

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// LogSource is a queryable decision log: `warden logs` and the admin API
// read it.
type LogSource interface {
	// Query returns at most limit matching records, newest first, starting
	// after cursor ("" for the newest). next is the cursor of the following
	// page, "" when there is none.
	Query(ctx context.Context, f Filter, limit int, cursor string) (recs []*Record, next string, err error)
	// Kind names the source: redis_stream, file or memory.
	Kind() string
	Close() error
}

// Follower is a LogSource that can also follow: the file and Redis stream
// sources.
type Follower interface {
	LogSource
	// Follow calls fn for every new matching record until ctx ends.
	Follow(ctx context.Context, f Filter, fn func(*Record)) error
}

var (
	_ Follower  = (*FileSource)(nil)
	_ Follower  = (*StreamSource)(nil)
	_ LogSource = (*Ring)(nil)
)

// ErrBadCursor is returned for a cursor the source did not issue.
var ErrBadCursor = errors.New("invalid page token")

// timeCursor orders records newest first by (time, decision id); sources
// without a native order (files, memory) page with it.
type timeCursor struct {
	t  int64 // UnixNano
	id string
}

func (c timeCursor) String() string { return "t:" + strconv.FormatInt(c.t, 10) + ":" + c.id }

func parseTimeCursor(s string) (timeCursor, bool, error) {
	if s == "" {
		return timeCursor{}, false, nil
	}
	rest, ok := strings.CutPrefix(s, "t:")
	ns, id, ok2 := strings.Cut(rest, ":")
	t, err := strconv.ParseInt(ns, 10, 64)
	if !ok || !ok2 || err != nil || id == "" {
		return timeCursor{}, false, ErrBadCursor
	}
	return timeCursor{t, id}, true, nil
}

func cursorOf(r *Record) timeCursor { return timeCursor{r.Time.UnixNano(), r.DecisionID} }

// older reports whether a sorts after b in newest-first order.
func (c timeCursor) older(b timeCursor) bool {
	return c.t < b.t || (c.t == b.t && c.id < b.id)
}

// page is the newest-first selection shared by the file and memory sources:
// it keeps the limit+1 newest records older than the cursor.
type page struct {
	after timeCursor
	has   bool
	limit int
	recs  []*Record
}

func (p *page) add(r *Record) {
	if p.has && !cursorOf(r).older(p.after) {
		return
	}
	p.recs = append(p.recs, r)
	// Records arrive oldest first (nearly: replicas and buffers reorder
	// them a little), so trimming from the front keeps the newest.
	if len(p.recs) > 2*(p.limit+1)+64 {
		p.trim()
	}
}

func (p *page) trim() {
	sort.Slice(p.recs, func(i, j int) bool { return cursorOf(p.recs[j]).older(cursorOf(p.recs[i])) })
	if len(p.recs) > p.limit+1 {
		p.recs = slices.Clone(p.recs[:p.limit+1])
	}
}

func (p *page) result() ([]*Record, string) {
	p.trim()
	if len(p.recs) <= p.limit {
		return p.recs, ""
	}
	recs := p.recs[:p.limit]
	return recs, cursorOf(recs[len(recs)-1]).String()
}

// FileSource reads a file sink and its rotated backups (lumberjack names
// them NAME-TIMESTAMP.EXT beside it).
type FileSource struct {
	Path string
	// MaxLineBytes bounds a line Follow reads (0: DefaultMaxLineBytes);
	// a longer one is skipped, never waited on.
	MaxLineBytes int
	// OnSkip, when set before Follow, is told of every line Follow skips
	// (its size, and how many it has skipped so far).
	OnSkip func(lineBytes int64, skipped int)

	// followed, when set (by tests), is called once Follow watches the
	// file and has read up to its end.
	followed func()
	// opened, when set (by tests), is called when a query has opened the
	// file at Path and not yet listed the backups.
	opened func()
}

// Kind implements LogSource.
func (s *FileSource) Kind() string { return "file" }

// Query implements LogSource: one pass over the window (ScanRaw).
func (s *FileSource) Query(ctx context.Context, f Filter, limit int, cursor string) ([]*Record, string, error) {
	after, has, err := parseTimeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	p := &page{after: after, has: has, limit: limit}
	err = s.ScanRaw(ctx, f.Since, func(line []byte) error {
		var rec Record
		if json.Unmarshal(line, &rec) == nil && rec.DecisionID != "" && f.Match(&rec) {
			p.add(&rec)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	recs, next := p.result()
	return recs, next, nil
}

// Close implements LogSource.
func (s *FileSource) Close() error { return nil }

// StreamSource reads the Redis stream sink: every replica's records.
type StreamSource struct {
	Client redis.UniversalClient
	Stream string
	// CloseClient makes Close close Client.
	CloseClient bool
}

// Kind implements LogSource.
func (s *StreamSource) Kind() string { return "redis_stream" }

func decodeStream(m redis.XMessage) (*Record, bool) {
	v, _ := m.Values[StreamField].(string)
	var rec Record
	if json.Unmarshal([]byte(v), &rec) != nil || rec.DecisionID == "" {
		return nil, false
	}
	return &rec, true
}

// Query implements LogSource. Its cursor is a stream entry id. It is
// QueryBounded without a bound on what it reads; the context's end is an
// error, not a partial page.
func (s *StreamSource) Query(ctx context.Context, f Filter, limit int, cursor string) ([]*Record, string, error) {
	recs, next, _, stopped, err := s.QueryBounded(ctx, f, limit, cursor, 0)
	if stopped {
		return nil, "", ctx.Err()
	}
	return recs, next, err
}

func validStreamID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return ok && err1 == nil && err2 == nil
}

// Follow implements Follower.
func (s *StreamSource) Follow(ctx context.Context, f Filter, fn func(*Record)) error {
	// The stream's last entry now, once: "$" in every XREAD would name the
	// end as each read begins, skipping what was added between two reads.
	last := "0-0"
	top, err := s.Client.XRevRangeN(ctx, s.Stream, "+", "-", 1).Result()
	if err != nil {
		return err
	}
	if len(top) == 1 {
		last = top[0].ID
	}
	for {
		res, err := s.Client.XRead(ctx, &redis.XReadArgs{Streams: []string{s.Stream, last}, Block: time.Second, Count: 1000}).Result()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			return err
		}
		for _, st := range res {
			for _, m := range st.Messages {
				if r, ok := decodeStream(m); ok && f.Match(r) {
					fn(r)
				}
				last = m.ID
			}
		}
	}
}

// Close implements LogSource.
func (s *StreamSource) Close() error {
	if s.CloseClient {
		return s.Client.Close()
	}
	return nil
}

// Ring keeps this replica's most recent records in memory, so the admin API
// can answer when no sink is queryable (stdout). It is bounded in records
// and in bytes (the records' estimated size); the oldest go first.
type Ring struct {
	mu       sync.Mutex
	recs     []*Record
	next     int // where the next record goes
	n        int // records held, the newest n before next
	bytes    int
	maxBytes int
}

// NewRing keeps the newest n records, at most maxBytes of them (0: no byte
// bound).
func NewRing(n, maxBytes int) *Ring { return &Ring{recs: make([]*Record, n), maxBytes: maxBytes} }

// Add stores r (the decision log calls it off the request path).
func (g *Ring) Add(r *Record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == len(g.recs) {
		g.evict()
	}
	g.recs[g.next] = r
	g.next = (g.next + 1) % len(g.recs)
	g.n++
	g.bytes += r.cost
	for g.maxBytes > 0 && g.bytes > g.maxBytes && g.n > 1 {
		g.evict()
	}
}

// evict drops the oldest record.
func (g *Ring) evict() {
	i := (g.next - g.n + len(g.recs)) % len(g.recs)
	g.bytes -= g.recs[i].cost
	g.recs[i] = nil
	g.n--
}

// Len is the number of records held and their estimated bytes.
func (g *Ring) Len() (records, bytes int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n, g.bytes
}

// Kind implements LogSource.
func (g *Ring) Kind() string { return "memory" }

// Query implements LogSource.
func (g *Ring) Query(_ context.Context, f Filter, limit int, cursor string) ([]*Record, string, error) {
	after, has, err := parseTimeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	p := &page{after: after, has: has, limit: limit}
	g.mu.Lock()
	all := make([]*Record, 0, g.n)
	for k := g.n; k > 0; k-- {
		all = append(all, g.recs[(g.next-k+len(g.recs))%len(g.recs)])
	}
	g.mu.Unlock()
	for _, r := range all {
		if f.Match(r) {
			p.add(r)
		}
	}
	recs, next := p.result()
	return recs, next, nil
}

// Close implements LogSource.
func (g *Ring) Close() error { return nil }
