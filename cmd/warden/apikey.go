package main

import (
	"fmt"
	"io"
	"time"

	"github.com/wardenauthz/warden/identity"
)

// cmdAPIKeyNew prints a new API key (once: Warden keeps only its hash) and
// the entry that accepts it, for the identity.api_keys file.
func cmdAPIKeyNew(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("apikey new", stderr)
	name := fs.String("name", "", "the key's name: its principal is ApiKey::\"NAME\" (required)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if *name == "" {
		fmt.Fprintln(stderr, "warden apikey new: --name is required")
		return exitError
	}
	key, entry, err := identity.NewAPIKey(*name, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "warden apikey new: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "key (shown once; give it to the caller, who sends 'Authorization: ApiKey <key>'):\n%s\n\n", key)
	fmt.Fprintf(stdout, "add under keys: in the identity.api_keys file (it holds the hash only):\n%s", entry)
	return exitOK
}
