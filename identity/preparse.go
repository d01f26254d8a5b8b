package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// header is the protected JOSE header of a compact JWS.
type header struct {
	Alg, Kid, Typ string
}

// parsed is a token that passed every check that needs no key.
type parsed struct {
	header  header
	claims  map[string]any
	iss     string
	signing string // header.payload, for the record
}

var b64 = base64.RawURLEncoding.Strict()

// preparse rejects every malformed or disallowed form before any signature
// work or key fetch (SPEC §4): size, characters, JWS JSON serialization, JWE,
// non-canonical base64, duplicate JSON keys, crit, b64, none and HS*.
func preparse(raw string, maxBytes int) (*parsed, error) {
	if len(raw) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes over the %d byte limit", ErrTooLarge, len(raw), maxBytes)
	}
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	dots := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '{':
			return nil, fmt.Errorf("%w: JWS JSON serialization", ErrUnsupportedForm)
		default:
			return nil, fmt.Errorf("%w: character not allowed in a compact JWS", ErrMalformed)
		}
	}
	switch dots {
	case 2:
	case 4:
		return nil, fmt.Errorf("%w: encrypted token (JWE)", ErrUnsupportedForm)
	default:
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	h64, rest, _ := strings.Cut(raw, ".")
	p64, s64, _ := strings.Cut(rest, ".")
	if h64 == "" || p64 == "" {
		return nil, fmt.Errorf("%w: empty segment", ErrMalformed)
	}
	hb, err := b64.DecodeString(h64)
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var hdrFields map[string]any
	if err := decodeObject(hb, &hdrFields); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	for _, k := range []string{"crit", "b64", "enc", "zip"} {
		if _, ok := hdrFields[k]; ok {
			return nil, fmt.Errorf("%w: header parameter %q", ErrUnsupportedForm, k)
		}
	}
	var h header
	for _, f := range []struct {
		name string
		dst  *string
	}{{"alg", &h.Alg}, {"kid", &h.Kid}, {"typ", &h.Typ}} {
		if v, ok := hdrFields[f.name]; ok {
			s, isStr := v.(string)
			if !isStr {
				return nil, fmt.Errorf("%w: header %s is not a string", ErrMalformed, f.name)
			}
			*f.dst = s
		}
	}
	switch {
	case h.Alg == "" || strings.EqualFold(h.Alg, "none"):
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, h.Alg)
	case strings.HasPrefix(strings.ToUpper(h.Alg), "HS"):
		return nil, fmt.Errorf("%w: %s (symmetric)", ErrAlgorithm, h.Alg)
	}
	if s64 == "" {
		return nil, fmt.Errorf("%w: unsigned token", ErrMalformed)
	}
	if _, err := b64.DecodeString(s64); err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	pb, err := b64.DecodeString(p64)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	var claims map[string]any
	if err := decodeObject(pb, &claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if err := foldedClaimNames(claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	iss, ok := claims["iss"].(string)
	if !ok || iss == "" {
		return nil, fmt.Errorf("%w: no iss claim", ErrUnknownIssuer)
	}
	return &parsed{header: h, claims: claims, iss: iss, signing: h64 + "." + p64}, nil
}

// decodeObject decodes a JSON object, rejecting duplicate keys at any depth
// and trailing data. Numbers stay json.Number.
func decodeObject(b []byte, v *map[string]any) error {
	if err := checkDuplicates(b); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("not a JSON object")
	}
	if *v == nil {
		return fmt.Errorf("not a JSON object")
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}

// checkDuplicates fails on a repeated key in any object, comparing keys
// after unescaping (go-oidc and encoding/json silently keep the last one).
// It only scans: the JSON is fully validated by the decode that follows.
func checkDuplicates(b []byte) error {
	s := dupScanner{b: b}
	s.ws()
	if err := s.value(0); err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return errors.New("invalid JSON")
	}
	return nil
}

type dupScanner struct {
	b []byte
	i int
}

var errJSON = errors.New("invalid JSON")

func (s *dupScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *dupScanner) value(depth int) error {
	if depth > 32 {
		return errors.New("JSON nested too deeply")
	}
	if s.i >= len(s.b) {
		return errJSON
	}
	switch s.b[s.i] {
	case '{':
		return s.object(depth)
	case '[':
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return nil
		}
		for {
			s.ws()
			if err := s.value(depth + 1); err != nil {
				return err
			}
			if done, err := s.next(']'); done || err != nil {
				return err
			}
		}
	case '"':
		_, err := s.str()
		return err
	}
	start := s.i
	for s.i < len(s.b) && !strings.ContainsRune(",}] \t\r\n", rune(s.b[s.i])) {
		s.i++
	}
	if s.i == start {
		return errJSON
	}
	return nil
}

func (s *dupScanner) object(depth int) error {
	s.i++ // {
	var keys []string
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return errJSON
		}
		k, err := s.str()
		if err != nil {
			return err
		}
		for _, prev := range keys {
			if prev == k {
				return fmt.Errorf("duplicate key %q", k)
			}
		}
		keys = append(keys, k)
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errJSON
		}
		s.i++
		s.ws()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		if done, err := s.next('}'); done || err != nil {
			return err
		}
	}
}

// next consumes "," (done is false: more follows) or the closing bracket.
func (s *dupScanner) next(closing byte) (done bool, err error) {
	s.ws()
	if s.i >= len(s.b) {
		return false, errJSON
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return false, nil
	case closing:
		s.i++
		return true, nil
	}
	return false, errJSON
}

// str scans a string at s.i and returns its decoded value.
func (s *dupScanner) str() (string, error) {
	start := s.i
	s.i++
	escaped := false
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i += 2
			continue
		case '"':
			s.i++
			raw := s.b[start:s.i]
			if !escaped {
				return string(raw[1 : len(raw)-1]), nil
			}
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return "", errJSON
			}
			return v, nil
		}
		s.i++
	}
	return "", errJSON
}

// oidcClaimNames are the members go-oidc decodes into its own struct with
// encoding/json, which matches names without case: for go-oidc "ISS" or
// "Sub" is iss or sub, while Warden (and RFC 7519) reads names exactly.
var oidcClaimNames = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "at_hash", "_claim_names", "_claim_sources"}

// foldedClaimNames refuses a claims set in which a reader matching names
// without case would see something other than Warden: a case variant of
// a claim go-oidc reads ("EXP", "Sub", "\u017fub" with the long s, which
// Go's folding takes for "sub"), or two top-level names equal under that
// folding (a backend decoding the token into a struct takes whichever
// comes last).
func foldedClaimNames(claims map[string]any) error {
	seen := make(map[string]string, len(claims))
	for k := range claims {
		for _, n := range oidcClaimNames {
			if k != n && strings.EqualFold(k, n) {
				return fmt.Errorf("claim %q is a case variant of %q", k, n)
			}
		}
		f := strings.Map(foldRune, k)
		if prev, dup := seen[f]; dup {
			return fmt.Errorf("claims %q and %q differ only in case", prev, k)
		}
		seen[f] = k
	}
	return nil
}

// foldRune maps r to the smallest rune of its simple case-folding orbit,
// so two names are equal under strings.EqualFold (and encoding/json's
// matching) exactly when their mapped forms are equal.
func foldRune(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}
