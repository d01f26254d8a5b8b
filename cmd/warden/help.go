package main

// help is each subcommand's --help: what it does, then examples; the flags
// follow (flag.PrintDefaults). Keys are the FlagSet names given to newFlags.
var help = map[string]string{
	"serve": `Usage: warden serve [--config FILE]

Run the ext_authz gRPC server (Envoy's envoy.service.auth.v3.Authorization),
with /healthz, /readyz and /metrics on server.http_addr and, when configured,
the admin API. Without a config: the embedded quick start (dev issuer,
policies for an orders API). Policies reload when their directory changes;
the last good set keeps serving when a new one is broken.

Examples:
  warden serve
  warden serve --config /etc/warden/warden.yaml
  WARDEN_CONFIG=warden.yaml warden serve
`,
	"check": `Usage: warden check --url URL [--method M] [--header 'k: v']... (--server ADDR | --config FILE)

Ask for a decision as Envoy would: the CheckRequest Envoy builds for the
request is sent to a running Warden (--server) or decided in-process with a
config (--config; with a Redis store, its revocations are read first, and an
unreachable Redis is an error). Prints the decision, status, principal and
deciding policies. --explain (in-process: --config, else $WARDEN_CONFIG, else
the quick start) adds why: the route, the principal, action and resource with
their ancestors, each policy that could apply with its scope and conditions
evaluated, and the deciding rule. Exit 0 allowed, 1 denied, 2 on an error.

Examples:
  TOKEN=$(warden dev token --sub alice --groups readers)
  warden check --config warden.yaml --url http://localhost:8080/orders/42 --header "authorization: Bearer $TOKEN"
  warden check --server 127.0.0.1:9191 --method DELETE --url http://localhost:8080/orders/42 --context-ext service=orders
  warden check --config warden.yaml --url https://api.local/orders --peer-principal spiffe://cluster.local/ns/billing/sa/invoicer
  warden check --explain --method DELETE --url http://localhost:8080/orders/42 --header "authorization: Bearer $TOKEN"
`,
	"dev token": `Usage: warden dev token --sub SUB [--groups a,b] [--scope 'x y'] [--ttl 1h] [--claim k=v]... [--config FILE]

Issue a token from the config's dev issuer (identity.dev_issuer; the quick
start has one), for trying policies locally. Never enable a dev issuer in
production.

Examples:
  warden dev token --sub alice --groups readers
  warden dev token --sub walt --groups writers --claim acr=mfa --ttl 10m
  warden dev token --sub old --ttl -1m        # already expired
`,
	"policy validate": `Usage: warden policy validate [--config FILE]

Check the config's policies, schema, entities, routes and actions, every
problem at once (file:line:col). Exit 0 valid, 1 problems found, 2 on an error.

Examples:
  warden policy validate
  warden policy validate --config warden.yaml
`,
	"policy test": `Usage: warden policy test [--config FILE] [-v] PATH...

Run policy tests. PATH is a test file, or a directory of them (*.json, *.yaml, *.yml):
  .json   the Cedar CLI's test format, decided by Cedar over the policies
  .yaml   Warden's HTTP form, decided by the whole Check pipeline, as Envoy would see it
-v lists every test and explains each failure as 'warden check --explain' does.
Exit 0 when every test passes, 1 when one fails, 2 on an error.

Examples:
  warden policy test examples/quickstart/tests
  warden policy test --config warden.yaml -v tests/orders.yaml
`,
	"policy status": `Usage: warden policy status [--config FILE | --server ADDR] [--output table|json]

The policy set a running Warden serves, through its admin API: when it was
loaded, its policies, and the last reload error if the newest files are
broken.

Examples:
  warden policy status
  warden policy status --server 10.0.0.5:9193 --token-file admin.token --output json
`,
	"config validate": `Usage: warden config validate FILE

Check a config file (strict YAML: unknown keys are errors, with their line)
and the policies it names. Exit 0 valid, 1 problems found, 2 on an error.

Examples:
  warden config validate warden.yaml
`,
	"envoy validate": `Usage: warden envoy validate [--strict] FILE...

Check Envoy bootstrap or listener YAML offline, as Envoy loads it: strict
protojson with every typed_config resolved, the generated validation, and
Envoy's load-time checks (router filter last, clusters defined, the ext_authz
gRPC cluster on HTTP/2). Every problem is reported, each with file:line and
field path.

Then a security lint, as warnings with a fix: failure_mode_allow: true;
normalize_path or merge_slashes not true; path_with_escaped_slashes_action
keeping %2F; headers with underscores allowed; an ext_authz timeout over 1s;
with_request_body with allow_partial_message: true or max_request_bytes over
1 MiB.

Exit 0 when every file loads (warnings allowed, unless --strict), 1 when a
file has errors (or warnings, with --strict), 2 on a usage error.

Examples:
  warden envoy validate envoy/front-proxy/envoy.yaml
  warden envoy validate --strict envoy.yaml listeners/*.yaml    # in CI
`,
	"apikey new": `Usage: warden apikey new --name NAME

Make an API key for the principal ApiKey::"NAME": prints the key once (wk_,
a 16-digit id, _, 64 hex digits of secret; Warden stores only its SHA-256)
and the entry to add under keys: in the identity.api_keys file, which
Warden reads again when it changes. Callers send 'Authorization: ApiKey
KEY'. Revoke a key by name with 'warden revoke --subject ApiKey::"NAME"',
or delete its entry.

Examples:
  warden apikey new --name partner-acme
  warden apikey new --name ci-deployer
`,
	"revoke": `Usage: warden revoke [--config FILE | --server ADDR] --jti ID [--exp TIME]
       warden revoke [--config FILE | --server ADDR] --subject ISSUER|SUB [--before TIME]
       warden revoke --undo [--config FILE | --server ADDR] --jti ID | --subject ISSUER|SUB
       warden revoke list [--config FILE | --server ADDR] [--output table|json]

Revoke one token (by jti, until its expiry) or every token of a subject
issued before a time, in the config's Redis store, or through a running
Warden's admin API (--server; needed for a memory store). Replicas see it
within revocation.poll. --subject 'ApiKey::"NAME"' revokes the API key
NAME (keys created before --before; a key made later under the same name
works). --undo takes a revocation back at once (unrevoke; with the Redis
store every replica drops it at once); through the admin API it needs the
Revoke grant.

Examples:
  warden revoke --config warden.yaml --jti 7c5e0c1e --exp 2026-06-02T14:00:00Z
  warden revoke --server 127.0.0.1:9193 --subject 'corp|alice'
  warden revoke --server 127.0.0.1:9193 --subject 'ApiKey::"partner-acme"'
  warden revoke --undo --server 127.0.0.1:9193 --jti 7c5e0c1e
  warden revoke list --config warden.yaml
`,
	"logs": `Usage: warden logs [--config FILE | --server ADDR] [filters] [--follow]

Query decision records: from the config's redis_stream sink (every
replica), else its file sink and rotated backups, else its admin API;
--server asks a running Warden's admin API. Filters combine; a malformed
value is an error naming the form it wants (never an empty answer).

Examples:
  warden logs --decision deny --since 1h
  warden logs --decision-id 4f1c9a0e6b2d4c8f9e7a1b3c5d7e9f01 --since 7d
  warden logs --principal 'User::"corp|alice"' --reason policy_deny
  warden logs --policy orders-delete-needs-mfa --since 2026-11-28T09:00:00Z --until 2026-11-28T10:00:00Z
  warden logs --server 127.0.0.1:9193 --node warden-1 --output json
  warden logs --config warden.yaml --follow
`,
	"replay": `Usage: warden replay --policies DIR [--config FILE | --server ADDR] [--since 24h] [--fail-on decisions|policies]

Decide every replayable logged decision (decision_log.replayable) again with
the candidate policies in DIR, and report what changes: newly denied, newly
allowed, or only the deciding policies ("reasons changed"). Exit 1 when a
decision changes (--fail-on decisions, the default) or also when only the
deciding policy ids change (--fail-on policies); 0 otherwise; 2 on an error.

Examples:
  warden replay --config warden.yaml --policies ./candidate --since 24h
  warden replay --server 127.0.0.1:9193 --policies ./candidate --fail-on policies --output json
`,
	"access-review": `Usage: warden access-review [--config FILE | --server ADDR] [--since 30d] [--principal P | --group G] [--suggest DIR]

Compare what each principal may do (per the policies in service) with what
the decision log shows they did: unused grants, policies that never decided
an allow, and with --suggest a narrower policy set to review and replay.

Examples:
  warden access-review --config warden.yaml --since 30d
  warden access-review --principal 'User::"corp|alice"'
  warden access-review --group 'Group::"corp|staff"' --suggest ./suggested && warden replay --policies ./suggested
`,
	"version": `Usage: warden version [--output text|json]

Print Warden's module version, the VCS revision it was built from, the Go
version and the cedar-go version.

Examples:
  warden version
  warden version --output json
`,
	"routes import": `Usage: warden routes import [--service S] [--resource-type T] [--base-path P] [--host] [--out DIR | --schema] OPENAPI_FILE

Read an OpenAPI 3 document (YAML or JSON) and write its operations as Warden
routes (for policy.routes in warden.yaml) and the route actions as a Cedar
schema fragment (for the policy directory's schema.cedarschema).

A path /orders/{id} becomes the route template /orders/{id}; its resource is
Order::"{id}" (the last parameter, its type singularised from the segment
before it; --resource-type sets it), or what x-warden-resource on the path or
operation says, e.g. x-warden-resource: 'Pet::"{petId}"'. The first server
URL's path is put before every path (--base-path overrides it). Routes are
ordered so that none shadows another (literal segments before parameters,
HEAD before GET), and checked as Warden loads them.

Without --out, the routes go to stdout (--schema: the schema fragment
instead). --out DIR writes DIR/routes.yaml and DIR/schema.cedarschema,
refusing to overwrite either. Exit 0 imported, 2 on an error.

Examples:
  warden routes import --service orders openapi.yaml
  warden routes import --service pets --out ./imported petstore.json
  warden routes import --schema --base-path / openapi.yaml
`,
}
