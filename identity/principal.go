package identity

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// maxPrincipalBytes bounds a principal given to RevocationSubject.
const maxPrincipalBytes = 4096

// RevocationSubject reads a token principal as an operator copies it from a
// decision record or an identity header and returns the id revocations are
// keyed on: the principal id "NAME|ID" (Identity.ID), NAME the issuer's
// configured name, ID the token's sub — or its client id for a
// client-credentials token ("dev|svc", not "dev|"). It accepts
//
//   - NAME|ID, with the configured issuer name (x-warden-principal's id);
//   - URL|ID, with the issuer URL as the token's iss and x-warden-issuer
//     show it, with or without a trailing slash;
//   - User::"NAME|ID" or Client::"NAME|ID", as records show the principal.
//
// ID is everything after the issuer and its "|", so it may hold "|" itself
// (auth0|123). An issuer that is not configured is an error: a revocation
// for it could never take effect. Call SetDefaults first.
func (c *Config) RevocationSubject(s string) (string, error) {
	if len(s) > maxPrincipalBytes {
		return "", fmt.Errorf("%d bytes: at most %d", len(s), maxPrincipalBytes)
	}
	if q, ok := strings.CutPrefix(s, "ApiKey::"); ok {
		name, err := strconv.Unquote(q)
		if err != nil || !strings.HasPrefix(q, `"`) {
			return "", fmt.Errorf("%q: want ApiKey::\"NAME\"", s)
		}
		if c.APIKeys == nil {
			return "", fmt.Errorf("%q: identity.api_keys is not configured", s)
		}
		if err := apiKeyNameError(name); err != nil {
			return "", fmt.Errorf("%q: name %v", s, err)
		}
		return (&APIKeyInfo{Name: name}).RevocationSubject(), nil
	}
	for _, typ := range []string{"User::", "Client::"} {
		if q, ok := strings.CutPrefix(s, typ); ok {
			u, err := strconv.Unquote(q)
			if err != nil || !strings.HasPrefix(q, `"`) {
				return "", fmt.Errorf("%q: want %s\"ISSUER|ID\"", s, typ)
			}
			s = u
			break
		}
	}
	if strings.HasPrefix(s, "Workload::") || strings.HasPrefix(s, "Anonymous::") || strings.HasPrefix(s, "Group::") {
		return "", fmt.Errorf("%q: only token principals (User, Client) are revoked by subject", s)
	}
	type known struct {
		key, name string
		twin      bool // the URL with its trailing slash toggled
	}
	var keys []known
	add := func(name, url string) {
		keys = append(keys, known{key: name, name: name}, known{key: url, name: name})
		if u, ok := strings.CutSuffix(url, "/"); ok {
			keys = append(keys, known{key: u, name: name, twin: true})
		} else {
			keys = append(keys, known{key: url + "/", name: name, twin: true})
		}
	}
	for _, is := range c.Issuers {
		add(is.Name, is.Issuer)
	}
	if c.DevIssuer.Enabled {
		add(DevIssuerName, DevIssuerURL)
	}
	// The longest issuer that prefixes s wins (a URL over a name), and of
	// two as long a configured URL over another's trailing-slash twin.
	slices.SortStableFunc(keys, func(a, b known) int {
		if len(a.key) != len(b.key) {
			return len(b.key) - len(a.key)
		}
		switch {
		case a.twin == b.twin:
			return 0
		case b.twin:
			return -1
		}
		return 1
	})
	for _, k := range keys {
		id, ok := strings.CutPrefix(s, k.key+"|")
		if !ok {
			continue
		}
		if id == "" {
			return "", fmt.Errorf("%q: no id after the issuer (want ISSUER|ID, e.g. %s|alice, or %s|CLIENT_ID for a client-credentials token)", s, k.name, k.name)
		}
		if err := PrincipalIDError(id); err != nil {
			return "", fmt.Errorf("%q: %v", s, err)
		}
		return k.name + "|" + id, nil
	}
	names := make([]string, 0, len(c.Issuers)+1)
	for _, is := range c.Issuers {
		names = append(names, is.Name+" ("+is.Issuer+")")
	}
	if c.DevIssuer.Enabled {
		names = append(names, DevIssuerName+" ("+DevIssuerURL+")")
	}
	if !strings.Contains(s, "|") {
		return "", fmt.Errorf("%q: want ISSUER|ID, e.g. corp|alice, where ISSUER is one of: %s", s, strings.Join(names, ", "))
	}
	return "", fmt.Errorf("%q: unknown issuer; configured: %s", s, strings.Join(names, ", "))
}

// PrincipalIDError says why id (a token's sub or client id) can be no
// principal's: it has a control character, or whitespace at either end
// (which an operator's copy could not be told from the id without).
// Authentication refuses such tokens; RevocationSubject such ids.
func PrincipalIDError(id string) error {
	if strings.ContainsFunc(id, unicode.IsControl) {
		return errors.New("control character in the id")
	}
	if strings.TrimFunc(id, unicode.IsSpace) != id {
		return errors.New("whitespace at the start or end of the id")
	}
	return nil
}
