package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// DefaultMaxLineBytes is FileSource.Follow's default line bound: far above
// any record the decision log writes with its default limits.
const DefaultMaxLineBytes = 4 << 20

// Follow implements Follower. It watches the file's directory (fsnotify,
// no polling) and reads what is appended after it starts, whole lines
// only; a line over MaxLineBytes is skipped (OnSkip is told) without
// holding up the ones after it. A file replaced (lumberjack renames it and
// creates a new one) is read to its end, then the new one from its start;
// a file truncated is read again from its start (as with tail -F, one
// truncated and grown past the read position before Follow looks cannot be
// told from one appended to).
func (s *FileSource) Follow(ctx context.Context, f Filter, fn func(*Record)) error {
	path := filepath.Clean(s.Path)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	// Watching before opening: nothing appended after Follow starts is
	// missed.
	if err := w.Add(filepath.Dir(path)); err != nil {
		return fmt.Errorf("watch %s: %w", filepath.Dir(path), err)
	}
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { fh.Close() }()
	if _, err := fh.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	max := s.MaxLineBytes
	if max <= 0 {
		max = DefaultMaxLineBytes
	}
	skipped := 0
	lr := &lineReader{max: max, chunk: make([]byte, 64<<10), onSkip: func(n int64) {
		skipped++
		if s.OnSkip != nil {
			s.OnSkip(n, skipped)
		}
	}}
	emit := func(line []byte) {
		var rec Record
		if json.Unmarshal(line, &rec) == nil && rec.DecisionID != "" && f.Match(&rec) {
			fn(&rec)
		}
	}
	if s.followed != nil {
		s.followed()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			if filepath.Clean(ev.Name) != path {
				continue
			}
		case _, ok := <-w.Errors:
			// An overflow loses events, not data: read what is there.
			if !ok {
				return errors.New("file watcher closed")
			}
		}
		if fh, err = s.catchUp(ctx, fh, lr, emit); err != nil {
			return err
		}
	}
}

// catchUp reads fh to its end, then follows the path to a new file (read
// from its start) while the path names another file than fh, or reads fh
// again from its start when it was truncated. It returns the file to read
// next.
func (s *FileSource) catchUp(ctx context.Context, fh *os.File, lr *lineReader, emit func([]byte)) (*os.File, error) {
	for {
		if err := lr.readFrom(ctx, fh, emit); err != nil {
			return fh, err
		}
		st, err := os.Stat(s.Path)
		if errors.Is(err, os.ErrNotExist) {
			return fh, nil // renamed away; its successor's Create event comes
		}
		if err != nil {
			return fh, err
		}
		cur, err := fh.Stat()
		if err != nil {
			return fh, err
		}
		if !os.SameFile(cur, st) {
			// What was appended to fh after the read above, before its
			// rename, is still fh's: read it before moving on (a record
			// written just before a rotation was lost, under load).
			if err := lr.readFrom(ctx, fh, emit); err != nil {
				return fh, err
			}
			next, err := os.Open(s.Path)
			if errors.Is(err, os.ErrNotExist) {
				return fh, nil
			}
			if err != nil {
				return fh, err
			}
			fh.Close()
			fh = next
			lr.reset()
			continue
		}
		pos, err := fh.Seek(0, io.SeekCurrent)
		if err != nil {
			return fh, err
		}
		if st.Size() >= pos {
			return fh, nil
		}
		if _, err := fh.Seek(0, io.SeekStart); err != nil {
			return fh, err
		}
		lr.reset()
	}
}

// lineReader splits what is read into lines within a bound: a partial
// last line waits for the rest, and a line over max is skipped (onSkip is
// told its size) rather than buffered, so memory stays within max and a
// long line never holds up the lines after it.
type lineReader struct {
	max      int
	chunk    []byte
	buf      []byte // the partial line so far
	skipping bool   // the current line is over max: drop it up to its newline
	skipN    int64  // bytes of the line being skipped
	onSkip   func(lineBytes int64)
}

// reset forgets a partial line (the file was replaced or truncated).
func (lr *lineReader) reset() { lr.buf, lr.skipping, lr.skipN = lr.buf[:0], false, 0 }

// readFrom reads r to its end, calling emit with each whole line (without
// its newline; emit must not keep it).
func (lr *lineReader) readFrom(ctx context.Context, r io.Reader, emit func([]byte)) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(lr.chunk)
		lr.feed(lr.chunk[:n], emit)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (lr *lineReader) feed(b []byte, emit func([]byte)) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		part := b
		if i >= 0 {
			part, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		switch {
		case lr.skipping:
			lr.skipN += int64(len(part))
		case len(lr.buf)+len(part) > lr.max:
			lr.skipping, lr.skipN = true, int64(len(lr.buf)+len(part))
			lr.buf = lr.buf[:0]
		case i >= 0 && len(lr.buf) == 0:
			emit(part) // the whole line is in the chunk: no copy
			continue
		default:
			lr.buf = append(lr.buf, part...)
		}
		if i < 0 {
			return
		}
		if lr.skipping {
			lr.onSkip(lr.skipN)
			lr.skipping, lr.skipN = false, 0
			continue
		}
		emit(lr.buf)
		lr.buf = lr.buf[:0]
	}
}
