// Package quickstart embeds the quick start configuration that `warden
// serve` runs when given no config: the dev issuer, the memory store, and
// policies for an example "orders" API.
package quickstart

import "embed"

// FS holds warden.yaml and policies/.
//
//go:embed warden.yaml policies
var FS embed.FS
