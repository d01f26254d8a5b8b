package decisionlog

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// RawScanner reads every record of a whole window once, as stored (JSON),
// for analyses over many records (warden replay, warden access-review):
// no paging, no decoding of what the reader does not need.
type RawScanner interface {
	// ScanRaw calls fn with each record's JSON whose time is at or after
	// since, in storage order (oldest first, nearly). fn must not keep line.
	ScanRaw(ctx context.Context, since time.Time, fn func(line []byte) error) error
}

var (
	_ RawScanner = (*FileSource)(nil)
	_ RawScanner = (*StreamSource)(nil)
)

// ScanRaw reads src's records since the given time: directly when src is a
// RawScanner, else page by page (a remote admin API), re-encoded.
func ScanRaw(ctx context.Context, src LogSource, since time.Time, fn func(line []byte) error) error {
	if s, ok := src.(RawScanner); ok {
		return s.ScanRaw(ctx, since, fn)
	}
	cursor := ""
	for {
		recs, next, err := src.Query(ctx, Filter{Since: since}, 1000, cursor)
		if err != nil {
			return err
		}
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := fn(b); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// recordTime reads a record's time: from the front of the line as Warden
// writes it ({"time":"..."), else by decoding.
func recordTime(line []byte) (time.Time, bool) {
	const pre = `{"time":"`
	if len(line) > len(pre)+20 && string(line[:len(pre)]) == pre {
		for i := len(pre); i < len(line) && i < len(pre)+40; i++ {
			if line[i] == '"' {
				t, err := time.Parse(time.RFC3339Nano, string(line[len(pre):i]))
				return t, err == nil
			}
		}
	}
	var r struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal(line, &r) != nil || r.Time.IsZero() {
		return time.Time{}, false
	}
	return r.Time, true
}

// ScanRaw implements RawScanner: the backups last written before since are
// skipped unread. The files are opened as QueryBounded opens them, so a
// rotation during the scan loses no record written before it.
func (s *FileSource) ScanRaw(ctx context.Context, since time.Time, fn func(line []byte) error) error {
	files, err := s.open()
	if err != nil {
		return err
	}
	defer func() {
		for _, lf := range files {
			lf.fh.Close()
		}
	}()
	for i := len(files) - 1; i >= 0; i-- { // oldest first
		lf := files[i]
		if lf.st.ModTime().Before(since) {
			continue
		}
		if err := scanFile(ctx, lf, since, fn); err != nil {
			return err
		}
	}
	return nil
}

func scanFile(ctx context.Context, lf *logFile, since time.Time, fn func([]byte) error) error {
	// Up to the size when opened: what is written after is newer than the
	// scan, and a file rotated meanwhile is not read twice.
	sc := bufio.NewScanner(io.NewSectionReader(lf.fh, 0, lf.st.Size()))
	sc.Buffer(make([]byte, 256<<10), 16<<20)
	for n := 0; sc.Scan(); n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		line := sc.Bytes()
		if t, ok := recordTime(line); !ok || t.Before(since) {
			continue
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", lf.name, err)
	}
	return nil
}

// ScanRaw implements RawScanner over the stream, from the first entry
// added at or after since (entry ids are XADD times).
func (s *StreamSource) ScanRaw(ctx context.Context, since time.Time, fn func(line []byte) error) error {
	start := "-"
	if !since.IsZero() {
		start = strconv.FormatInt(since.UnixMilli(), 10)
	}
	for {
		msgs, err := s.Client.XRangeN(ctx, s.Stream, start, "+", 1000).Result()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			v, _ := m.Values[StreamField].(string)
			if t, ok := recordTime([]byte(v)); !ok || t.Before(since) {
				continue
			}
			if err := fn([]byte(v)); err != nil {
				return err
			}
		}
		if len(msgs) < 1000 {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}
