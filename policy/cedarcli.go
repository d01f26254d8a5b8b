package policy

import (
	"github.com/cedar-policy/cedar-go"
)

// Authorize decides a plain Cedar request as the Cedar CLI would: every
// policy of s, over s's entities (with Warden's action entities) overlaid
// by ents, whose entities replace s's of the same uid. There is no route
// mapping and no @status or step-up answer: this is what `warden policy
// test` runs for a test case in the Cedar CLI's format. An erroring forbid
// denies as Warden enforces it (policy.on_error), not as the Cedar CLI
// would.
func (s *Set) Authorize(ents cedar.EntityMap, req cedar.Request) Result {
	all := s.entities.overlaid(ents)
	dec, diag := cedar.Authorize(fullScan{s}, all, req)
	res := Result{Allow: dec == cedar.Allow, Principal: req.Principal, Action: req.Action, Resource: req.Resource, Context: req.Context}
	res.Reasons, res.Errors = diagnostics(diag)
	s.forbidErrored(&res, dec, diag)
	return res
}

// ParseEntities reads a list of entities in Cedar's JSON format; errors
// name file:line:col of the bad entity.
func ParseEntities(file string, b []byte) (cedar.EntityMap, error) { return parseEntities(file, b) }

// ParseEntities reads entities as the set's own entities.json is read:
// with the set's schema, entity-typed attributes are entity references
// (see parseEntitiesWith). For the entities of a Cedar CLI test.
func (s *Set) ParseEntities(file string, b []byte) (cedar.EntityMap, error) {
	ents, _, err := parseEntitiesWith(file, b, s.schema)
	return ents, err
}
