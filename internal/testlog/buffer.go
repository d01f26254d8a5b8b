package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a goroutine-safe bytes.Buffer for tests: a log or record sink,
// or a child process's output, that the test reads while another goroutine
// writes to it. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
