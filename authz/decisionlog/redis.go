package decisionlog

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStreamSink appends records to a Redis stream (XADD MAXLEN ~), so
// every replica's decisions can be queried in one place. Records of a burst
// go in one pipeline.
type RedisStreamSink struct {
	c      redis.UniversalClient
	stream string
	maxLen int64
	pipe   redis.Pipeliner
	// onError is fixed by NewRedisStreamSink.
	onError func(error)
}

// RedisStreamOptions configure a RedisStreamSink.
type RedisStreamOptions struct {
	// Stream is the stream's key.
	Stream string
	// MaxLen trims the stream to about this many entries.
	MaxLen int64
	// OnError, when set, is told of a failed flush (the records of that
	// burst are lost).
	OnError func(error)
}

// NewRedisStreamSink writes to the stream o names through c (which Close
// leaves open).
func NewRedisStreamSink(c redis.UniversalClient, o RedisStreamOptions) *RedisStreamSink {
	return &RedisStreamSink{c: c, stream: o.Stream, maxLen: o.MaxLen, onError: o.OnError}
}

// StreamField is the stream entry field that holds the record's JSON.
const StreamField = "r"

// WriteLine implements LineSink.
func (s *RedisStreamSink) WriteLine(line []byte) error {
	if s.pipe == nil {
		s.pipe = s.c.Pipeline()
	}
	s.pipe.XAdd(context.Background(), &redis.XAddArgs{
		Stream: s.stream, MaxLen: s.maxLen, Approx: true,
		// A copy: the pipeline holds its arguments until Flush, and the
		// decision log reuses line for the next record.
		Values: []any{StreamField, string(line[:len(line)-1])},
	})
	return nil
}

// Flush implements LineSink.
func (s *RedisStreamSink) Flush() error {
	if s.pipe == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := s.pipe.Exec(ctx)
	s.pipe = nil
	if err != nil && s.onError != nil {
		s.onError(err)
	}
	return err
}

// Close implements LineSink; it does not close the shared client.
func (s *RedisStreamSink) Close() error { return s.Flush() }
