package policy

import (
	"bytes"
	"hash/maphash"
	"iter"
	"math"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cedar-policy/cedar-go"
)

// entityStore is a set's static entities (entities.json and Warden's
// action entities) in compact form: every uid named (defined or only
// referenced as a parent) is interned once, parents and transitive
// ancestors are index lists into one flat array each, and each entity's
// attributes and tags are kept as their canonical Cedar JSON and decoded
// when a decision reads the entity. A decision touches a few entities of
// many thousands; the decoded ones are kept in a small bounded cache.
// It is immutable once built and safe for concurrent use.
type entityStore struct {
	// table indexes uids by hash: open addressing, linear probing, each
	// slot a uid's index + 1 (0: empty), its length a power of two at
	// least twice the uids'. A Go map of the uids cost 80-100 bytes an
	// entry; the table costs 8-16.
	seed  maphash.Seed
	table []int32
	// The uids by index: uid i is types[typeOf[i]] and
	// ids[idOff[i]:idOff[i+1]] (a uid header and a string each cost 50-60
	// bytes an entity; this, 8 and the id's bytes), or, when the ids
	// exceed maxPacked, wide[i].
	types  []cedar.EntityType
	typeOf []int32
	idOff  []uint32
	ids    string
	wide   []cedar.EntityUID
	// defined: the uid is an entity of the set (not only a parent named
	// by one).
	defined []bool
	// parentOff[i]:parentOff[i+1] are i's parents in parentIdx; ancOff
	// and ancIdx likewise its ancestors.
	parentOff, parentIdx []int32
	ancOff, ancIdx       []int32
	// recs are the distinct pairs of attributes and tags, in Cedar's
	// JSON form, back to back: entity i's pair is p = recOf[i], its
	// attributes recs[recOff[2p]:recOff[2p+1]] and its tags
	// recs[recOff[2p+1]:recOff[2p+2]]; empty: none (pair 0 is empty).
	// One array rather than a slice each (a slice's header and its own
	// allocation cost more than a short record's bytes), and entities
	// with the same attributes and tags (a department, a role) share
	// them: 4 bytes an entity and 8 a distinct pair, beside its bytes.
	recs   []byte
	recOf  []uint32
	recOff []uint32
	// kept are the attributes and tags, decoded, of the entities whose
	// attributes or tags do not survive the JSON round trip unchanged
	// (cedar-go reads some values it writes differently).
	kept  map[int32]keptRecords
	cache [entityCacheSlots]atomic.Pointer[cachedEntity]
}

// lookup is uid's index, if the store names it.
func (s *entityStore) lookup(uid cedar.EntityUID) (int32, bool) {
	if len(s.table) == 0 {
		return 0, false
	}
	mask := uint64(len(s.table) - 1)
	for h := uidHash(s.seed, uid) & mask; ; h = (h + 1) & mask {
		v := s.table[h]
		if v == 0 {
			return 0, false
		}
		if s.uid(v-1) == uid {
			return v - 1, true
		}
	}
}

func uidHash(seed maphash.Seed, uid cedar.EntityUID) uint64 {
	return maphash.String(seed, string(uid.ID)) ^ maphash.String(seed, string(uid.Type))*0x9E3779B97F4A7C15
}

// uid is uid i.
func (s *entityStore) uid(i int32) cedar.EntityUID {
	if s.wide != nil {
		return s.wide[i]
	}
	return cedar.EntityUID{Type: s.types[s.typeOf[i]], ID: cedar.String(s.ids[s.idOff[i]:s.idOff[i+1]])}
}

// attrsOf and tagsOf are entity i's attributes and tags in JSON (nil:
// none).
func (s *entityStore) attrsOf(i int32) []byte { return s.rec(2 * int(s.recOf[i])) }
func (s *entityStore) tagsOf(i int32) []byte  { return s.rec(2*int(s.recOf[i]) + 1) }

func (s *entityStore) rec(k int) []byte {
	lo, hi := s.recOff[k], s.recOff[k+1]
	if lo == hi {
		return nil
	}
	return s.recs[lo:hi:hi]
}

// entityCacheSlots bounds the decoded entities kept (direct mapped by
// index). BenchmarkEntityGet: an entity with five attributes of mixed
// types and two parents takes 16-31 µs and 80 allocations to decode, 35 ns
// and none from the cache. 4096 slots hold the entities of that many
// recent principals and resources (a few MB at most); a miss costs one
// decode.
const entityCacheSlots = 4096

type keptRecords struct{ attrs, tags cedar.Record }

type cachedEntity struct {
	idx int32
	e   cedar.Entity
}

var _ cedar.EntityGetter = (*entityStore)(nil)

// Get is the entity uid, as cedar.EntityGetter.
func (s *entityStore) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	i, ok := s.lookup(uid)
	if !ok || !s.defined[i] {
		return cedar.Entity{}, false
	}
	slot := &s.cache[int(i)%entityCacheSlots]
	if c := slot.Load(); c != nil && c.idx == i {
		return c.e, true
	}
	e := s.decode(i)
	slot.Store(&cachedEntity{idx: i, e: e})
	return e, true
}

// decode builds entity i. Its attributes and tags were checked at load to
// decode to what they were encoded from.
func (s *entityStore) decode(i int32) cedar.Entity {
	e := cedar.Entity{UID: s.uid(i)}
	ps := s.parentIdx[s.parentOff[i]:s.parentOff[i+1]]
	if len(ps) > 0 {
		uids := make([]cedar.EntityUID, len(ps))
		for j, p := range ps {
			uids[j] = s.uid(p)
		}
		e.Parents = cedar.NewEntityUIDSet(uids...)
	}
	if k, ok := s.kept[i]; ok {
		e.Attributes, e.Tags = k.attrs, k.tags
	}
	if b := s.attrsOf(i); b != nil {
		_ = e.Attributes.UnmarshalJSON(b)
	}
	if b := s.tagsOf(i); b != nil {
		_ = e.Tags.UnmarshalJSON(b)
	}
	return e
}

// has reports whether uid is an entity of the set.
func (s *entityStore) has(uid cedar.EntityUID) bool {
	i, ok := s.lookup(uid)
	return ok && s.defined[i]
}

// hasParents reports whether uid is an entity of the set with parents.
func (s *entityStore) hasParents(uid cedar.EntityUID) bool {
	i, ok := s.lookup(uid)
	return ok && s.defined[i] && s.parentOff[i+1] > s.parentOff[i]
}

// appendAncestors appends uid's transitive ancestors to dst.
func (s *entityStore) appendAncestors(dst []cedar.EntityUID, uid cedar.EntityUID) []cedar.EntityUID {
	i, ok := s.lookup(uid)
	if !ok {
		return dst
	}
	for _, a := range s.ancIdx[s.ancOff[i]:s.ancOff[i+1]] {
		dst = append(dst, s.uid(a))
	}
	return dst
}

// all is the uids of the set's entities, in no particular order.
func (s *entityStore) all() iter.Seq[cedar.EntityUID] {
	return func(yield func(cedar.EntityUID) bool) {
		for i := range s.defined {
			if s.defined[i] && !yield(s.uid(int32(i))) {
				return
			}
		}
	}
}

// overlaid is s with ents in front (ents replace s's entities of the same
// uid).
func (s *entityStore) overlaid(ents cedar.EntityMap) cedar.EntityGetter {
	if len(ents) == 0 {
		return s
	}
	return mapOverStore{ents, s}
}

type mapOverStore struct {
	ents   cedar.EntityMap
	static *entityStore
}

func (m mapOverStore) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	if e, ok := m.ents[uid]; ok {
		return e, true
	}
	return m.static.Get(uid)
}

// storeBuilder collects entities for an entityStore.
type storeBuilder struct {
	ids         map[cedar.EntityUID]int32
	uids        []cedar.EntityUID
	defined     []bool
	parents     [][]int32
	attrs, tags [][]byte
	kept        map[int32]keptRecords
	// types interns entity types: each is kept once however many
	// entities it names (ids need not be: each uid is indexed once, and the
	// packed store copies its id).
	types map[cedar.EntityType]cedar.EntityType
}

func newStoreBuilder() *storeBuilder {
	return &storeBuilder{ids: map[cedar.EntityUID]int32{}, types: map[cedar.EntityType]cedar.EntityType{}}
}

func (b *storeBuilder) intern(t cedar.EntityType) cedar.EntityType {
	if v, ok := b.types[t]; ok {
		return v
	}
	b.types[t] = t
	return t
}

// index is uid's index, interning it.
func (b *storeBuilder) index(uid cedar.EntityUID) int32 {
	if i, ok := b.ids[uid]; ok {
		return i
	}
	uid.Type = b.intern(uid.Type)
	i := int32(len(b.uids))
	b.ids[uid] = i
	b.uids = append(b.uids, uid)
	b.defined = append(b.defined, false)
	b.parents = append(b.parents, nil)
	b.attrs = append(b.attrs, nil)
	b.tags = append(b.tags, nil)
	return i
}

// add defines e (the caller has refused a uid defined twice).
func (b *storeBuilder) add(e cedar.Entity) {
	i := b.index(e.UID)
	b.defined[i] = true
	b.parents[i] = nil
	for p := range e.Parents.All() {
		b.parents[i] = append(b.parents[i], b.index(p))
	}
	b.attrs[i], b.tags[i] = nil, nil
	delete(b.kept, i)
	attrs, exact := encodeRecord(e.Attributes)
	if tags, ok := encodeRecord(e.Tags); ok && exact {
		b.attrs[i], b.tags[i] = attrs, tags
	} else {
		if b.kept == nil {
			b.kept = map[int32]keptRecords{}
		}
		b.kept[i] = keptRecords{e.Attributes, e.Tags}
	}
}

// encodeRecord is r's JSON form (nil when r is empty), and whether it
// decodes to r again. Only a form with an escape ("__entity", "__extn")
// somewhere is decoded to check: strings, numbers, booleans, sets and
// records of them read back as written.
func encodeRecord(r cedar.Record) ([]byte, bool) {
	if r.Len() == 0 {
		return nil, true
	}
	b, err := r.MarshalJSON()
	if err != nil {
		return nil, false
	}
	if !bytes.Contains(b, []byte("__e")) {
		return b, true
	}
	var back cedar.Record
	if back.UnmarshalJSON(b) != nil || !back.Equal(r) {
		return nil, false
	}
	return b, true
}

// addParents defines uid if it is not and adds parents to its own.
func (b *storeBuilder) addParents(uid cedar.EntityUID, parents ...cedar.EntityUID) {
	i := b.index(uid)
	b.defined[i] = true
	for _, p := range parents {
		pi := b.index(p)
		if !slices.Contains(b.parents[i], pi) {
			b.parents[i] = append(b.parents[i], pi)
		}
	}
}

// build flattens the parents and computes every entity's transitive
// ancestors (cycle-safe; a uid that is only referenced has none).
func (b *storeBuilder) build() *entityStore {
	n := len(b.uids)
	s := &entityStore{seed: maphash.MakeSeed(), defined: slices.Clip(b.defined), kept: b.kept}
	s.packUIDs(b.uids)
	b.ids, b.uids = nil, nil // the table and the packed uids replace them
	size := 1
	for size < 2*n {
		size <<= 1
	}
	s.table = make([]int32, size)
	mask := uint64(size - 1)
	for i := range n {
		h := uidHash(s.seed, s.uid(int32(i))) & mask
		for s.table[h] != 0 {
			h = (h + 1) & mask
		}
		s.table[h] = int32(i + 1)
	}
	s.packRecords(b.attrs, b.tags)
	b.attrs, b.tags = nil, nil
	s.parentOff = make([]int32, n+1)
	edges := 0
	for _, ps := range b.parents {
		edges += len(ps)
	}
	s.parentIdx = make([]int32, 0, edges)
	for i, ps := range b.parents {
		s.parentIdx = append(s.parentIdx, ps...)
		s.parentOff[i+1] = int32(len(s.parentIdx))
	}
	b.parents = nil
	s.ancOff = make([]int32, n+1)
	seen := make([]int32, n) // seen[j] == i+1: j reached from i
	var stack, anc []int32
	for i := range n {
		stack = append(stack[:0], s.parentIdx[s.parentOff[i]:s.parentOff[i+1]]...)
		seen[i] = int32(i + 1)
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[p] == int32(i+1) {
				continue
			}
			seen[p] = int32(i + 1)
			anc = append(anc, p)
			stack = append(stack, s.parentIdx[s.parentOff[p]:s.parentOff[p+1]]...)
		}
		s.ancOff[i+1] = int32(len(anc))
	}
	s.ancIdx = slices.Clone(anc)
	return s
}

// packUIDs stores uids in packed form, or as they are when their ids
// exceed maxPacked.
func (s *entityStore) packUIDs(uids []cedar.EntityUID) {
	total := 0
	for _, uid := range uids {
		total += len(uid.ID)
	}
	if total > maxPacked {
		s.wide = slices.Clone(uids)
		return
	}
	s.typeOf = make([]int32, len(uids))
	typeIdx := map[cedar.EntityType]int32{}
	var ids strings.Builder
	ids.Grow(total)
	s.idOff = make([]uint32, 1, len(uids)+1)
	for i, uid := range uids {
		t, ok := typeIdx[uid.Type]
		if !ok {
			t = int32(len(s.types))
			typeIdx[uid.Type] = t
			s.types = append(s.types, uid.Type)
		}
		s.typeOf[i] = t
		ids.WriteString(string(uid.ID))
		s.idOff = append(s.idOff, uint32(ids.Len()))
	}
	s.ids = ids.String()
}

// maxPacked bounds ids and recs (their offsets are uint32): past it, the
// uids are kept as they are and the records of the entities beyond it
// decoded (a variable for the test).
var maxPacked = int(min(uint64(math.MaxUint32), uint64(math.MaxInt)))

// pairHash hashes a pair of attributes and tags (a variable for the test).
var pairHash = func(seed maphash.Seed, attrs, tags []byte) uint64 {
	return maphash.Bytes(seed, attrs) ^ maphash.Bytes(seed, tags)*0x9E3779B97F4A7C15
}

// packRecords copies the entities' distinct JSON attributes and tags into
// recs.
func (s *entityStore) packRecords(attrs, tags [][]byte) {
	s.recOf = make([]uint32, len(attrs))
	reps := []int{-1}            // pair → the first entity with it (pair 0: none)
	first := map[uint64]uint32{} // hash of a pair → the first pair with it
	total := 0
	for i := range attrs {
		a, t := attrs[i], tags[i]
		if a == nil && t == nil {
			continue // pair 0
		}
		h := pairHash(s.seed, a, t)
		p, seen := first[h]
		if seen && bytes.Equal(attrs[reps[p]], a) && bytes.Equal(tags[reps[p]], t) {
			s.recOf[i] = p
			continue
		}
		if total+len(a)+len(t) > maxPacked {
			// Keep them decoded (they decoded to what they were
			// encoded from: the builder checked).
			var k keptRecords
			if a != nil {
				_ = k.attrs.UnmarshalJSON(a)
			}
			if t != nil {
				_ = k.tags.UnmarshalJSON(t)
			}
			if s.kept == nil {
				s.kept = map[int32]keptRecords{}
			}
			s.kept[int32(i)] = k
			continue
		}
		p = uint32(len(reps))
		reps = append(reps, i)
		if !seen {
			first[h] = p
		}
		total += len(a) + len(t)
		s.recOf[i] = p
	}
	s.recs = make([]byte, 0, total)
	s.recOff = make([]uint32, 1, 2*len(reps)+1)
	for _, r := range reps {
		if r >= 0 {
			s.recs = append(s.recs, attrs[r]...)
		}
		s.recOff = append(s.recOff, uint32(len(s.recs)))
		if r >= 0 {
			s.recs = append(s.recs, tags[r]...)
		}
		s.recOff = append(s.recOff, uint32(len(s.recs)))
	}
}
