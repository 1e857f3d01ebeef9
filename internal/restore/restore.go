// Package restore brings an eventfold deployment back to a point-in-time copy of its events
// table, without a gap, without a lost erasure, and without derived data that describes what is
// no longer there.
//
// The scheme. DynamoDB restores a table only into a new table (point-in-time recovery). Rather
// than re-wiring the stack to that new table (its stream, alarms, settings and every function's
// configuration would change), Apply makes the live events table equal to the copy, stream by
// stream: events the copy has and the live table lacks (or holds with another ID) are put back,
// and events past the copy's end of each stream are deleted, newest first, so that every stream
// stays contiguous at every moment. A user stream erased after the restore point keeps its
// SubjectErased: it is moved to follow the copy's end of the stream before anything past it is
// deleted, so the erasure is in the live table at every moment of the restore. Then what derives
// from the events is made to agree:
//
//   - idempotency records of commands whose events are gone are deleted (before the events
//     are), so that a retry runs the command again instead of replaying a success that no
//     longer exists;
//   - snapshots whose last event is not in the restored stream are deleted (loads ignore them
//     anyway, see store.LoadHistory);
//   - uniqueness claims are reconciled with what the restored user streams hold: a claim taken
//     by a registration or email change that is gone is released, and a claim given up by one is
//     taken again;
//   - erasures are applied again: every subject erased in the copy or after the restore point
//     is erased again through the command layer, which releases the email claim and erases the
//     key (idempotent); one who registered after the restore point as well loses the whole
//     stream, and only their key is erased again.
//
// Every step is idempotent, and what a step needs to know is still in the live tables when it
// runs: a restore that stops halfway is finished by running it again (tested by stopping it
// after each of its writes). The exception is a user who both registered and was erased after
// the restore point: once their stream is deleted, a run that stopped before their key was
// erased again no longer knows them (it matters only if KeysTable was restored too and they had
// a key before T, as a customer of orders). Read models are rebuilt afterwards (eventfold
// projections rebuild), and functions started cold (the README has the whole procedure).
// Writers must be stopped while Apply runs.
//
// Apply holds both tables' events in memory.
package restore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/idempotency"
	"github.com/eventfold/eventfold/internal/store"
)

// ErrNotRestorable is returned, wrapped, by Apply when the copy is not a usable event store: a
// stream with a gap, or an item that is not an event. Nothing was written.
var ErrNotRestorable = errors.New("the restored table is not a usable event store")

// API is the part of DynamoDB a restore uses.
type API interface {
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Users is what a restore needs of the command side: the claim a user's restored stream holds,
// and erasure (command.Service does both, over the live, sealing event store).
type Users interface {
	UserClaim(ctx context.Context, userID string) (string, error)
	EraseUser(ctx context.Context, m command.Meta, userID string) (command.Result, error)
}

// Config says what to restore.
type Config struct {
	API API
	// Events is the live events table, made equal to Restored, the point-in-time copy.
	Events, Restored string
	// Snapshots and Claims are the live snapshots and claims tables.
	Snapshots, Claims string
	// Idempotency keeps the Idempotency-Key records.
	Idempotency *idempotency.Store
	// Users is the command side on the live tables.
	Users Users
	// IDs makes the command IDs of the erasures applied again; a generator on time.Now when nil.
	IDs *store.IDs
}

// Validate reports every missing setting at once.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"Events", c.Events}, {"Restored", c.Restored}, {"Snapshots", c.Snapshots}, {"Claims", c.Claims}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("restore: %s table is required", f.name))
		}
	}
	if c.Events != "" && c.Events == c.Restored {
		errs = append(errs, errors.New("restore: the restored table must not be the live one"))
	}
	if c.API == nil || c.Users == nil || c.Idempotency == nil {
		errs = append(errs, errors.New("restore: API, Users and Idempotency are required"))
	}
	return errors.Join(errs...)
}

// Report is what Apply did, or with dryRun would do.
type Report struct {
	// Streams and Events count what the restored copy holds.
	Streams, Events int
	// PutBack counts events written again from the copy, and erasures moved to follow it;
	// Deleted, events removed past the copy's end of their stream.
	PutBack, Deleted int
	// Kept counts the user streams erased after the restore point whose SubjectErased is kept,
	// right after the copy's end of the stream.
	Kept int
	// Snapshots counts the snapshots deleted.
	Snapshots int
	// ClaimsReleased and ClaimsTaken count claims given up and taken again; ClaimConflicts names
	// the claim keys another stream holds (left as they are, to be resolved by hand).
	ClaimsReleased, ClaimsTaken int
	ClaimConflicts              []string
	// Idempotency counts the idempotency records deleted.
	Idempotency int
	// Erasures lists the subjects erased again.
	Erasures []string
}

type stream struct {
	items  []map[string]types.AttributeValue // by version - 1
	events []store.Event
}

// Apply makes the live tables agree with the restored copy of the events table: see the package
// doc. With dryRun it only reports the events, snapshots, idempotency records and erasures it
// would change (claims are reconciled from the restored streams, so only on a real run).
func Apply(ctx context.Context, c Config, dryRun bool) (Report, error) {
	if err := c.Validate(); err != nil {
		return Report{}, err
	}
	if c.IDs == nil {
		c.IDs = store.NewIDs(nil)
	}
	var r Report
	restored, err := scanStreams(ctx, c.API, c.Restored)
	if err != nil {
		return r, err
	}
	live, err := scanLive(ctx, c.API, c.Events)
	if err != nil {
		return r, err
	}
	for _, s := range restored {
		r.Streams++
		r.Events += len(s.events)
	}

	// 1. The events, planned before any write: put back what the copy has, delete what follows
	// its end, newest first; but a user stream erased after T keeps its SubjectErased, moved to
	// follow the copy's end (written there before anything past it is deleted). So the erasure is
	// in the live table at every moment, and a run that stops halfway is finished by running it
	// again: a plan made from the live table after a partial run finds it still.
	lost := map[string]bool{} // command IDs of the events removed
	erased := map[string]bool{}
	type change struct {
		id      string
		put     []map[string]types.AttributeValue // items written, in this order
		at      []int64                           // their versions
		deletes []store.Event                     // newest first
	}
	var plan []change
	ids := slices.Sorted(maps.Keys(restored))
	for id := range live {
		if _, ok := restored[id]; !ok {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		want, have := restored[id], live[id]
		ch := change{id: id}
		for i, e := range want.events {
			if h, ok := have[e.Version]; ok && h.ID == e.ID {
				continue
			}
			ch.put, ch.at = append(ch.put, want.items[i]), append(ch.at, e.Version)
		}
		end := int64(len(want.events))
		if subject, ok := strings.CutPrefix(id, "user-"); ok && !erasedIn(want.events) {
			if kept, ok := erasure(have, end); ok && end == 0 {
				erased[subject] = true // registered after T as well: the whole stream goes
			} else if ok {
				erased[subject] = true
				if kept.Version != end+1 {
					kept.Version = end + 1
					it, err := store.EncodeItem(kept)
					if err != nil {
						return r, fmt.Errorf("keep the erasure of %s: %w", id, err)
					}
					ch.put, ch.at = append(ch.put, it), append(ch.at, kept.Version)
				}
				r.Kept++
				end++
			}
		}
		for _, e := range past(have, end) {
			ch.deletes = append(ch.deletes, e)
			lost[e.CausationID] = true
		}
		plan = append(plan, ch)
	}
	for id, s := range restored {
		for _, e := range s.events {
			lost[e.CausationID] = false // a command some of whose events stay is not lost
			if e.Type == domain.TypeSubjectErased && strings.HasPrefix(id, "user-") {
				erased[strings.TrimPrefix(id, "user-")] = true
			}
		}
	}
	delete(lost, "")

	// 2. Idempotency records of commands that are gone, before their events go: a run that
	// stops after deleting them would no longer know them.
	if dryRun {
		for _, gone := range lost {
			if gone {
				r.Idempotency++ // at most: commands without an Idempotency-Key have no record
			}
		}
	} else if r.Idempotency, err = c.Idempotency.Forget(ctx, c.API, func(cmd string) bool { return lost[cmd] }); err != nil {
		return r, err
	}

	for _, ch := range plan {
		for i, it := range ch.put {
			r.PutBack++
			if !dryRun {
				if _, err := c.API.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(c.Events), Item: it}); err != nil {
					return r, fmt.Errorf("put back %s at %d: %w", ch.id, ch.at[i], err)
				}
			}
		}
		for _, e := range ch.deletes {
			r.Deleted++
			if !dryRun {
				if _, err := c.API.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(c.Events), Key: store.EventKey(ch.id, e.Version)}); err != nil {
					return r, fmt.Errorf("delete %s at %d: %w", ch.id, e.Version, err)
				}
			}
		}
	}

	// 3. Snapshots not of a restored history.
	err = store.ScanTable(ctx, c.API, c.Snapshots, nil, func(it map[string]types.AttributeValue) error {
		id, v, eventID, err := store.SnapshotOf(it)
		if err != nil {
			return err
		}
		if s, ok := restored[id]; ok && v >= 1 && v <= int64(len(s.events)) && s.events[v-1].ID == eventID {
			return nil
		}
		r.Snapshots++
		if dryRun {
			return nil
		}
		_, err = c.API.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(c.Snapshots), Key: store.ItemKey(id)})
		return err
	})
	if err != nil {
		return r, fmt.Errorf("snapshots: %w", err)
	}

	for s := range erased {
		r.Erasures = append(r.Erasures, s)
	}
	sort.Strings(r.Erasures)
	if dryRun {
		return r, nil
	}

	// 4. Claims, from the restored user streams (the live table now holds them).
	if err := reconcileClaims(ctx, c, restored, &r); err != nil {
		return r, fmt.Errorf("claims: %w", err)
	}

	// 5. Erasures, applied again.
	for _, subject := range r.Erasures {
		// The restore is the operator's (the CLI acts as one): erasure is an operator command.
		m := command.Meta{CommandID: c.IDs.New(), CorrelationID: "restore", Caller: auth.Operator("eventfold restore")}
		if _, err := c.Users.EraseUser(ctx, m, subject); err != nil && !errors.Is(err, domain.ErrNotFound) {
			return r, fmt.Errorf("erase %s again: %w", subject, err)
		}
	}
	return r, nil
}

// reconcileClaims makes the claims table hold, for every user stream, exactly the claim its
// restored events say it holds.
func reconcileClaims(ctx context.Context, c Config, restored map[string]stream, r *Report) error {
	held := map[string]string{}    // claim key -> owner stream
	owned := map[string][]string{} // user stream -> claim keys it holds
	err := store.ScanTable(ctx, c.API, c.Claims, nil, func(it map[string]types.AttributeValue) error {
		key, owner, err := store.ClaimOf(it)
		if err != nil {
			return err
		}
		held[key] = owner
		owned[owner] = append(owned[owner], key)
		return nil
	})
	if err != nil {
		return err
	}
	want := map[string]string{} // user stream -> the claim key its events hold
	for _, id := range slices.Sorted(maps.Keys(restored)) {
		if !strings.HasPrefix(id, "user-") {
			continue
		}
		key, err := c.Users.UserClaim(ctx, strings.TrimPrefix(id, "user-"))
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if key != "" {
			want[id] = key
		}
	}
	for owner, keys := range owned {
		if !strings.HasPrefix(owner, "user-") {
			continue // not a claim this restore knows how to derive
		}
		for _, key := range keys {
			if want[owner] == key {
				continue
			}
			if err := conditional(ctx, c, key, owner, false); err != nil {
				return err
			}
			delete(held, key)
			r.ClaimsReleased++
		}
	}
	for _, owner := range slices.Sorted(maps.Keys(want)) {
		key := want[owner]
		switch holder, ok := held[key]; {
		case ok && holder == owner:
		case ok:
			r.ClaimConflicts = append(r.ClaimConflicts, key)
		default:
			if err := conditional(ctx, c, key, owner, true); err != nil {
				return err
			}
			r.ClaimsTaken++
		}
	}
	return nil
}

// conditional takes (put) or releases (!put) the claim key for owner, only if no other stream
// holds it.
func conditional(ctx context.Context, c Config, key, owner string, put bool) error {
	free := expression.AttributeNotExists(expression.Name(store.AttrStream)).Or(expression.Name(store.AttrOwner).Equal(expression.Value(owner)))
	expr, err := expression.NewBuilder().WithCondition(free).Build()
	if err != nil {
		return err
	}
	if put {
		_, err = c.API.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(c.Claims), Item: store.ClaimItem(key, owner),
			ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()})
	} else {
		_, err = c.API.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(c.Claims), Key: store.ItemKey(key),
			ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()})
	}
	if err != nil {
		return fmt.Errorf("claim of %s: %w", owner, err)
	}
	return nil
}

// scanLive reads the live events table as it is, gaps included (a damaged table is what a
// restore repairs): per stream, its events by version. Items that are not events are skipped;
// an event of the copy overwrites one at its place.
func scanLive(ctx context.Context, api API, table string) (map[string]map[int64]store.Event, error) {
	out := map[string]map[int64]store.Event{}
	err := store.ScanTable(ctx, api, table, nil, func(it map[string]types.AttributeValue) error {
		if e, err := store.DecodeItem(it); err == nil {
			if out[e.StreamID] == nil {
				out[e.StreamID] = map[int64]store.Event{}
			}
			out[e.StreamID][e.Version] = e
		}
		return nil
	})
	return out, err
}

// erasedIn reports whether events hold a SubjectErased.
func erasedIn(events []store.Event) bool {
	for _, e := range events {
		if e.Type == domain.TypeSubjectErased {
			return true
		}
	}
	return false
}

// erasure returns the SubjectErased of have after version head: the one at head+1 if there is
// one there (kept by an earlier run), else the oldest.
func erasure(have map[int64]store.Event, head int64) (store.Event, bool) {
	if e, ok := have[head+1]; ok && e.Type == domain.TypeSubjectErased {
		return e, true
	}
	var found store.Event
	for v, e := range have {
		if v > head && e.Type == domain.TypeSubjectErased && (found.Version == 0 || v < found.Version) {
			found = e
		}
	}
	return found, found.Version > 0
}

// past returns the events of have after version head, newest first.
func past(have map[int64]store.Event, head int64) []store.Event {
	var out []store.Event
	for v, e := range have {
		if v > head {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out
}

// scanStreams reads the restored copy into streams in version order. A gap, or an item that is
// not an event, is ErrNotRestorable.
func scanStreams(ctx context.Context, api API, table string) (map[string]stream, error) {
	type entry struct {
		item map[string]types.AttributeValue
		e    store.Event
	}
	all := map[string][]entry{}
	err := store.ScanTable(ctx, api, table, nil, func(it map[string]types.AttributeValue) error {
		e, err := store.DecodeItem(it)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotRestorable, err)
		}
		all[e.StreamID] = append(all[e.StreamID], entry{it, e})
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]stream, len(all))
	for id, es := range all {
		sort.Slice(es, func(i, j int) bool { return es[i].e.Version < es[j].e.Version })
		var s stream
		for i, x := range es {
			if x.e.Version != int64(i+1) {
				return nil, fmt.Errorf("%w: %s has version %d after %d", ErrNotRestorable, id, x.e.Version, i)
			}
			s.items = append(s.items, x.item)
			s.events = append(s.events, x.e)
		}
		out[id] = s
	}
	return out, nil
}

// Copy copies into target every event of source recorded at or before until: what a
// point-in-time restore of an append-only events table to until holds. It is the local stand-in
// for DynamoDB's RestoreTableToPointInTime, which DynamoDB Local lacks, for tests and rehearsals
// of the procedure; in AWS, restore with point-in-time recovery instead. target must exist.
func Copy(ctx context.Context, api API, source, target string, until time.Time) (int, error) {
	n := 0
	err := store.ScanTable(ctx, api, source, nil, func(it map[string]types.AttributeValue) error {
		e, err := store.DecodeItem(it)
		if err == nil && e.RecordedAt.After(until) {
			return nil
		}
		if _, err := api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(target), Item: it}); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		n++
		return nil
	})
	return n, err
}
