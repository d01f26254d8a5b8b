package decisionlog

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON appends r as one JSON line. It writes what encoding/json would
// for Record (same keys, omissions and values; a test holds the two equal),
// but without reflection: the decision log encodes every Check, and
// reflection was a tenth of a Check's CPU.
func appendJSON(b []byte, r *Record) ([]byte, error) {
	b = append(b, `{"time":`...)
	b = appendTime(b, r.Time)
	b = appendStr(append(b, `,"decision_id":`...), r.DecisionID)
	b = appendStr(append(b, `,"decision":`...), string(r.Decision))
	b = strconv.AppendInt(append(b, `,"status":`...), int64(r.Status), 10)
	b = appendStr(append(b, `,"reason":`...), string(r.Reason))
	b = appendStrs(append(b, `,"policies":`...), r.Policies)
	if len(r.Errors) > 0 {
		b = appendStrs(append(b, `,"errors":`...), r.Errors)
	}
	b = appendOpt(b, `,"principal":`, r.Principal)
	b = appendOpt(b, `,"action":`, r.Action)
	b = appendOpt(b, `,"resource":`, r.Resource)
	b = append(b, `,"request":{`...)
	n := len(b)
	q := &r.Request
	b = appendOpt(b, `,"method":`, q.Method)
	b = appendOpt(b, `,"host":`, q.Host)
	b = appendOpt(b, `,"path":`, q.Path)
	b = appendOpt(b, `,"source_ip":`, q.SourceIP)
	b = appendOpt(b, `,"request_id":`, q.RequestID)
	if len(b) > n {
		b = append(b[:n], b[n+1:]...) // the first member's comma
	}
	b = append(b, '}')
	if t := r.Token; t != nil {
		b = appendStr(append(b, `,"token":{"iss":`...), t.Iss)
		b = appendOpt(b, `,"jti":`, t.Jti)
		if !t.Exp.IsZero() {
			b = appendTime(append(b, `,"exp":`...), t.Exp)
		}
		b = append(b, '}')
	}
	b = appendOpt(b, `,"workload":`, r.Workload)
	if rl := r.RateLimit; rl != nil {
		b = appendStr(append(b, `,"ratelimit":{"rule":`...), rl.Rule)
		b = strconv.AppendInt(append(b, `,"remaining":`...), int64(rl.Remaining), 10)
		b = append(b, '}')
	}
	b = strconv.AppendInt(append(b, `,"latency_us":`...), r.LatencyUS, 10)
	b = appendOpt(b, `,"node":`, r.Node)
	b = appendOpt(b, `,"detail":`, r.Detail)
	if r.Truncated {
		b = append(b, `,"truncated":true`...)
	}
	if r.Cedar != nil {
		// Only replayable logs have it: what appendCedar does not write
		// is left to encoding/json. The decision log's bounded copy never
		// holds what Cedar's JSON cannot (invalid UTF-8 is replaced, a
		// member named __entity or __extn left out: boundCedar); should a
		// section still fail to encode, the record is kept without it and
		// says "truncated" (never silently not replayable).
		n := len(b)
		var ok bool
		if b, ok = appendCedar(append(b, `,"cedar":`...), r.Cedar); !ok {
			b = b[:n]
			if c, err := json.Marshal(r.Cedar); err == nil {
				b = append(append(b, `,"cedar":`...), c...)
			} else if !r.Truncated {
				b = append(b, `,"truncated":true`...) // where it would have been: cedar follows it
			}
		}
	}
	b = appendOpt(b, `,"transport":`, r.Transport)
	b = appendOpt(b, `,"caller":`, r.Caller)
	return append(b, "}\n"...), nil
}

func appendOpt(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendStr(append(b, key...), s)
}

func appendStrs(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStr(b, s)
	}
	return append(b, ']')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string as encoding/json writes it
// (appendStr).
func AppendJSONString(b []byte, s string) []byte { return appendStr(b, s) }

// appendStr appends s as a JSON string as encoding/json does: invalid UTF-8
// becomes U+FFFD; <, >, &, U+2028 and U+2029 are escaped.
func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
