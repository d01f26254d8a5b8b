package token

import (
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"
)

func strSet(ss []string) cedar.Set {
	vs := make([]cedar.Value, len(ss))
	for i, s := range ss {
		vs[i] = cedar.String(s)
	}
	return cedar.NewSet(vs...)
}

// unix is t in Unix seconds, 0 when absent (a 0 is absent too).
func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// record converts the token; registered fields win over raw claims. Its
// shape is policy's schema type Token (policy.ModelSchema).
func record(t *View) cedar.Record {
	m := make(cedar.RecordMap, len(t.Claims)+4)
	for k, v := range t.Claims {
		if cv, ok := ClaimValue(v, 0); ok {
			m[cedar.String(k)] = cv
		}
	}
	set := func(k, v string) {
		if v != "" {
			m[cedar.String(k)] = cedar.String(v)
		} else {
			delete(m, cedar.String(k))
		}
	}
	set("iss", t.Iss)
	set("sub", t.Sub)
	set("client_id", t.ClientID)
	set("acr", t.Acr)
	m["aud"] = strSet(t.Aud)
	m["scope"] = strSet(t.Scopes)
	m["groups"] = strSet(t.Groups)
	m["amr"] = strSet(t.Amr)
	// The times as numbers (Unix seconds), and as datetimes to compare with
	// context.now: auth_time_datetime, iat_datetime, exp_datetime.
	for k, v := range map[string]int64{"iat": unix(t.Iat), "exp": unix(t.Exp), "auth_time": unix(t.AuthTime)} {
		dt := cedar.String(k + "_datetime")
		delete(m, dt)
		if v == 0 {
			delete(m, cedar.String(k))
			continue
		}
		m[cedar.String(k)] = cedar.Long(v)
		if v > -maxDatetimeSeconds && v < maxDatetimeSeconds {
			m[dt] = cedar.NewDatetime(time.Unix(v, 0))
		}
	}
	return cedar.NewRecord(m)
}

// maxDatetimeSeconds bounds the Unix times offered as datetimes (year
// 10000), well inside Cedar's millisecond range.
const maxDatetimeSeconds = 253402300800

const maxClaimDepth = 8

// ClaimValue converts a JSON claim (as decoded with UseNumber) to a Cedar
// value: strings, booleans, integers (Long), other numbers (decimal when
// representable), arrays (Set) and objects (Record). ok is false for null and
// for values Cedar cannot hold; such claims are left out.
func ClaimValue(v any, depth int) (cedar.Value, bool) {
	if depth > maxClaimDepth {
		return nil, false
	}
	switch v := v.(type) {
	case string:
		return cedar.String(v), true
	case bool:
		return cedar.Boolean(v), true
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return cedar.Long(i), true
		}
		f, err := v.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 9e14 {
			return nil, false
		}
		d, err := cedar.NewDecimalFromFloat(f)
		if err != nil {
			return nil, false
		}
		return d, true
	case float64:
		return ClaimValue(json.Number(strings.TrimSuffix(strings.TrimSuffix(jsonFloat(v), ".0"), ".")), depth)
	case []any:
		vs := make([]cedar.Value, 0, len(v))
		for _, e := range v {
			if cv, ok := ClaimValue(e, depth+1); ok {
				vs = append(vs, cv)
			}
		}
		return cedar.NewSet(vs...), true
	case map[string]any:
		m := make(cedar.RecordMap, len(v))
		for k, e := range v {
			if cv, ok := ClaimValue(e, depth+1); ok {
				m[cedar.String(k)] = cv
			}
		}
		return cedar.NewRecord(m), true
	}
	return nil, false
}

func jsonFloat(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}
