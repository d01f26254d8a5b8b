package decisionlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// BoundedQuerier is a LogSource whose queries can be bounded in the records
// they read (the admin API's QueryDecisions): a page is read newest written
// first and stops once it holds limit matches, so a page of one is cheap
// whatever the window holds.
type BoundedQuerier interface {
	LogSource
	// QueryBounded is Query reading at most maxRead records (0: no bound)
	// and stopping when ctx ends. read is the records it read; capped
	// reports that it stopped at either bound before the window's end with
	// fewer than limit matches: recs holds what it found and next continues
	// where it stopped. It answers ctx's error only when it read nothing.
	QueryBounded(ctx context.Context, f Filter, limit int, cursor string, maxRead int) (recs []*Record, next string, read int, capped bool, err error)
}

var (
	_ BoundedQuerier = (*FileSource)(nil)
	_ BoundedQuerier = (*StreamSource)(nil)
	_ BoundedQuerier = (*Ring)(nil)
)

// QueryBounded implements BoundedQuerier: the ring is bounded in records
// (decision_log.memory_records), so it reads it whole, as Query does.
func (g *Ring) QueryBounded(ctx context.Context, f Filter, limit int, cursor string, _ int) ([]*Record, string, int, bool, error) {
	n, _ := g.Len()
	recs, next, err := g.Query(ctx, f, limit, cursor)
	return recs, next, n, false, err
}

// QueryBounded implements BoundedQuerier over the stream, newest entry
// first, stopping as the file source's does; its cursor is a stream entry
// id, as Query's.
func (s *StreamSource) QueryBounded(ctx context.Context, f Filter, limit int, cursor string, maxRead int) ([]*Record, string, int, bool, error) {
	end := "+"
	if cursor != "" {
		id, ok := strings.CutPrefix(cursor, "s:")
		if !ok || !validStreamID(id) {
			return nil, "", 0, false, ErrBadCursor
		}
		end = "(" + id
	}
	start := "-"
	if !f.Since.IsZero() {
		start = strconv.FormatInt(f.Since.UnixMilli(), 10)
	}
	var recs []*Record
	var ids []string
	read, last := 0, ""
	// The first read asks for a page's worth (a page of one reads two
	// entries), the following ones twice as many, up to 1000.
	batch := min(1000, limit+1)
	for {
		n := int64(batch)
		batch = min(1000, 2*batch)
		if maxRead > 0 {
			if read >= maxRead {
				return recs, "s:" + last, read, true, nil
			}
			n = min(n, int64(maxRead-read))
		}
		msgs, err := s.Client.XRevRangeN(ctx, s.Stream, end, start, n).Result()
		if err != nil {
			if ctx.Err() != nil && last != "" {
				return recs, "s:" + last, read, true, nil
			}
			return nil, "", read, false, err
		}
		for _, m := range msgs {
			read++
			last = m.ID
			if r, ok := decodeStream(m); ok && f.Match(r) {
				recs, ids = append(recs, r), append(ids, m.ID)
				if f.DecisionID != "" {
					return recs, "", read, false, nil // a decision id names one record
				}
				if len(recs) > limit {
					return recs[:limit], "s:" + ids[limit-1], read, false, nil
				}
			}
		}
		if int64(len(msgs)) < n {
			return recs, "", read, false, nil
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
}

// A file source's bounded cursor names a place in one file of the log:
// "p:FILE:OFFSET", FILE the hash of the file's first line (which stays as
// lumberjack renames the file into a backup), OFFSET where the records not
// yet read end.
type fileCursor struct {
	file string
	off  int64
}

func (c fileCursor) String() string { return "p:" + c.file + ":" + strconv.FormatInt(c.off, 10) }

func parseFileCursor(s string) (fileCursor, error) {
	rest, ok := strings.CutPrefix(s, "p:")
	id, off, ok2 := strings.Cut(rest, ":")
	n, err := strconv.ParseInt(off, 10, 64)
	if !ok || !ok2 || err != nil || n < 0 || len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return fileCursor{}, ErrBadCursor
	}
	return fileCursor{id, n}, nil
}

// logFile is one open file of the log.
type logFile struct {
	fh   *os.File
	st   os.FileInfo
	id   string
	name string
}

// open opens the log's files, newest first. The file at Path is opened
// before the backups are listed, so that a rotation during the call leaves
// every record written before it in one of them: the file opened is read
// through its descriptor whatever its name now, and a backup that is that
// same file is skipped.
func (s *FileSource) open() ([]*logFile, error) {
	var out []*logFile
	closeAll := func() {
		for _, lf := range out {
			lf.fh.Close()
		}
	}
	add := func(name string) error {
		fh, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			return nil // rotated away or removed (max_backups) meanwhile
		}
		if err != nil {
			return err
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			return err
		}
		for _, o := range out {
			if os.SameFile(o.st, st) {
				fh.Close()
				return nil
			}
		}
		out = append(out, &logFile{fh: fh, st: st, name: name})
		return nil
	}
	if err := add(s.Path); err != nil {
		return nil, err
	}
	if s.opened != nil {
		s.opened()
	}
	ext := filepath.Ext(s.Path)
	backups, _ := filepath.Glob(strings.TrimSuffix(s.Path, ext) + "-*" + ext)
	sort.Sort(sort.Reverse(sort.StringSlice(backups))) // newest first
	for _, b := range backups {
		if err := add(b); err != nil {
			closeAll()
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no decision log yet", s.Path)
	}
	return out, nil
}

// ident names the file by its first line (at most 4 KiB of it).
func (lf *logFile) ident() (string, error) {
	if lf.id != "" {
		return lf.id, nil
	}
	b := make([]byte, 4096)
	n, err := lf.fh.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: %w", lf.name, err)
	}
	b = b[:n]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	}
	sum := sha256.Sum256(b)
	lf.id = hex.EncodeToString(sum[:8])
	return lf.id, nil
}

func (lf *logFile) cursor(off int64) (string, error) {
	id, err := lf.ident()
	return fileCursor{id, off}.String(), err
}

// maxLine bounds a line read backwards, as ScanRaw's.
const maxLine = 16 << 20

// revLines reads a file's lines backwards from end.
type revLines struct {
	fh  *os.File
	pos int64  // the file offset of buf[0]
	buf []byte // the file's bytes from pos to end
	end int64  // where the lines not yet read end
}

// prev returns the line before end (without its newline) and moves end to
// the line's start; io.EOF at the file's start. line is valid until the
// next call.
func (r *revLines) prev() ([]byte, error) {
	for {
		b := r.buf
		t := len(b)
		if t > 0 && b[t-1] == '\n' {
			t--
		}
		if i := bytes.LastIndexByte(b[:t], '\n'); i >= 0 {
			r.buf = b[:i+1]
			r.end = r.pos + int64(i+1)
			return b[i+1 : t], nil
		}
		if r.pos == 0 {
			if len(b) == 0 {
				return nil, io.EOF
			}
			r.buf, r.end = b[:0], 0
			return b[:t], nil
		}
		if len(b) > maxLine {
			return nil, fmt.Errorf("line before offset %d longer than %d bytes", r.end, maxLine)
		}
		n := min(int64(64<<10), r.pos)
		nb := make([]byte, int(n)+len(b))
		if _, err := r.fh.ReadAt(nb[:n], r.pos-n); err != nil {
			return nil, err
		}
		copy(nb[n:], b)
		r.buf, r.pos = nb, r.pos-n
	}
}

// QueryBounded implements BoundedQuerier: it reads the files backwards
// (the newest written record first) and stops at limit+1 matches (at the
// first with a decision id: it names one record), at maxRead records or
// when ctx ends. Its cursor is a place in a file
// (fileCursor), so paging returns every record once although records are
// written a little out of time order; a page is sorted newest first.
func (s *FileSource) QueryBounded(ctx context.Context, f Filter, limit int, cursor string, maxRead int) ([]*Record, string, int, bool, error) {
	var at fileCursor
	if cursor != "" {
		var err error
		if at, err = parseFileCursor(cursor); err != nil {
			return nil, "", 0, false, err
		}
	}
	files, err := s.open()
	if err != nil {
		return nil, "", 0, false, err
	}
	defer func() {
		for _, lf := range files {
			lf.fh.Close()
		}
	}()
	start := 0
	if cursor != "" {
		start = -1
		for i, lf := range files {
			if id, err := lf.ident(); err != nil {
				return nil, "", 0, false, err
			} else if id == at.file {
				start = i
				break
			}
		}
		if start < 0 {
			return nil, "", 0, false, nil // that file and the older ones are gone (max_backups)
		}
		if at.off > files[start].st.Size() {
			return nil, "", 0, false, ErrBadCursor
		}
	}
	var recs []*Record
	var next string
	read := 0
	page := func(next string, capped bool) ([]*Record, string, int, bool, error) {
		sort.SliceStable(recs, func(i, j int) bool { return cursorOf(recs[j]).older(cursorOf(recs[i])) })
		return recs, next, read, capped, nil
	}
	for i := start; i < len(files); i++ {
		lf := files[i]
		if !f.Since.IsZero() && lf.st.ModTime().Before(f.Since) {
			continue // last written before the window
		}
		end := lf.st.Size()
		if i == start && cursor != "" {
			end = at.off
		}
		r := &revLines{fh: lf.fh, pos: end, end: end}
		for {
			if (maxRead > 0 && read >= maxRead) || (read%1024 == 0 && ctx.Err() != nil) {
				if r.end == 0 && i == len(files)-1 {
					break // read to the end as the bound was reached
				}
				if next != "" {
					return page(next, false)
				}
				if read == 0 {
					return nil, "", 0, false, ctx.Err()
				}
				c, err := lf.cursor(r.end)
				if err != nil {
					return nil, "", read, false, err
				}
				return page(c, true)
			}
			line, err := r.prev()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, "", read, false, fmt.Errorf("%s: %w", lf.name, err)
			}
			read++
			if t, ok := recordTime(line); !ok || (!f.Since.IsZero() && t.Before(f.Since)) || (!f.Until.IsZero() && !t.Before(f.Until)) {
				continue
			}
			var rec Record
			if json.Unmarshal(line, &rec) != nil || rec.DecisionID == "" || !f.Match(&rec) {
				continue
			}
			if len(recs) == limit {
				return page(next, false) // one more: next is not the end
			}
			recs = append(recs, &rec)
			if f.DecisionID != "" {
				return page("", false) // a decision id names one record
			}
			if len(recs) == limit {
				if next, err = lf.cursor(r.end); err != nil {
					return nil, "", read, false, err
				}
			}
		}
	}
	return page("", false)
}
