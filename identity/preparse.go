package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// header is the protected JOSE header of a compact JWS.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
	Enc string `json:"enc"`
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
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header: wrong type", ErrMalformed)
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

// checkDuplicates walks the JSON token stream and fails on a repeated key
// in any object (go-oidc and encoding/json silently keep the last one).
func checkDuplicates(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	type frame struct {
		keys   map[string]struct{}
		object bool
		expect bool // next string token is a key
	}
	var stack []frame
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("invalid JSON")
		}
		if len(stack) > 32 {
			return fmt.Errorf("JSON nested too deeply")
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				if top >= 0 && stack[top].object {
					stack[top].expect = true
				}
				stack = append(stack, frame{keys: map[string]struct{}{}, object: true, expect: true})
			case '[':
				if top >= 0 && stack[top].object {
					stack[top].expect = true
				}
				stack = append(stack, frame{})
			case '}', ']':
				stack = stack[:top]
			}
		case string:
			if top >= 0 && stack[top].object && stack[top].expect {
				if _, dup := stack[top].keys[t]; dup {
					return fmt.Errorf("duplicate key %q", t)
				}
				stack[top].keys[t] = struct{}{}
				stack[top].expect = false
				continue
			}
			if top >= 0 && stack[top].object {
				stack[top].expect = true
			}
		default:
			if top >= 0 && stack[top].object {
				stack[top].expect = true
			}
		}
	}
}
