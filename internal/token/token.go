package token

import (
	"strings"
	"sync"
	"time"

	"github.com/cedar-policy/cedar-go"
)

// View is a verified access token as policies and the response see it. It
// never holds the raw token. identity sets the fields, then calls Seal;
// after that nothing changes it, and it is shared by concurrent Checks.
type View struct {
	Iss, Sub, ClientID, Jti, Acr string
	Aud, Scopes, Groups, Amr     []string
	Exp, Iat, AuthTime           time.Time // zero when absent
	// Claims are all claims as decoded from JSON (numbers as json.Number).
	Claims map[string]any

	// Made by Seal.
	principal     cedar.EntityUID
	principalText string
	groups        string
	scopes        string

	recOnce sync.Once
	rec     cedar.Record
	recVal  cedar.Value // rec, boxed once
}

// Seal names the principal the token makes — a Cedar entity of type typ
// (User or Client) and id id, both as identity derived them from the token
// alone — and computes the identity header values. Call it once, after the
// fields are set and before the view is shared.
func (v *View) Seal(typ, id string) {
	v.principal = cedar.NewEntityUID(cedar.EntityType(typ), cedar.String(id))
	v.principalText = v.principal.String()
	v.groups = joinEscaped(v.Groups, ',')
	v.scopes = joinEscaped(v.Scopes, ' ')
}

// Principal is the principal the token makes (zero before Seal).
func (v *View) Principal() cedar.EntityUID { return v.principal }

// PrincipalText is Principal().String(), as records and the identity
// header show it.
func (v *View) PrincipalText() string { return v.principalText }

// GroupsHeader is the groups as the identity header carries them
// (joinEscaped with ',').
func (v *View) GroupsHeader() string { return v.groups }

// ScopesHeader is the scopes as the identity header carries them
// (joinEscaped with ' ').
func (v *View) ScopesHeader() string { return v.scopes }

// Record is the token's Cedar record (context.token), built on the first
// call only: a view shared by the Checks that present the same cached token
// converts it once, not per Check. Safe for concurrent use.
func (v *View) Record() cedar.Record {
	v.recOnce.Do(v.makeRecord)
	return v.rec
}

// RecordValue is Record as a cedar.Value, boxed once: a context that
// holds it costs no allocation per Check.
func (v *View) RecordValue() cedar.Value {
	v.recOnce.Do(v.makeRecord)
	return v.recVal
}

func (v *View) makeRecord() { v.rec = record(v); v.recVal = v.rec }

// joinEscaped joins the groups (sep ',') or scopes (sep ' ') of an identity
// header so that the upstream can split them back: in each item '%' becomes
// %25 and sep becomes %2C or %20 (percent-encoding, RFC 3986), so a group
// named "a,b" is never read as the groups "a" and "b".
func joinEscaped(items []string, sep byte) string {
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteByte(sep)
		}
		for j := 0; j < len(it); j++ {
			switch c := it[j]; {
			case c == '%' || c == sep:
				b.WriteByte('%')
				b.WriteByte(hexUpper[c>>4])
				b.WriteByte(hexUpper[c&0xf])
			default:
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

const hexUpper = "0123456789ABCDEF"
