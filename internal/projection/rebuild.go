package projection

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/eventfold/eventfold/internal/store"
)

// ScanAPI is the part of DynamoDB a rebuild uses besides the projector's.
type ScanAPI interface {
	API
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Source is the event store as a rebuild reads it. Load fills gaps, as for the projector; Open
// opens the personal fields of an event the scan found, in place, as Load does for the events it
// returns, so a rebuilt read model holds what the live projector writes and never ciphertext.
// crypto.SealingStore is a Source; a store whose events hold no sealed fields opens nothing.
type Source interface {
	Events
	Open(ctx context.Context, e *store.Event) error
}

// Progress is reported while a rebuild runs.
type Progress struct {
	// Scanned counts the events read from the event store. Total counts those of them the target
	// lacked when the rebuild started (all of them, into a new table), and Applied those of Total
	// applied so far (by the rebuild, or found applied by a projector writing to the target).
	Scanned, Applied, Total int64
}

// RebuildConfig says what Rebuild reads and writes.
type RebuildConfig struct {
	// API scans the events table and the target, and writes the target.
	API ScanAPI
	// EventsTable is the event store's table, scanned; Target the read-model table brought up
	// to date.
	EventsTable, Target string
	// Registry upcasts the events scanned.
	Registry *store.Registry
	// Source opens the personal fields of the events scanned and fills gaps (crypto.SealingStore).
	Source Source
	// Segments is how many parallel scan segments and workers run: at least 1.
	Segments int
	// Report, when not nil, is called now and then from the rebuild's goroutines.
	Report func(Progress)
}

// Rebuild brings the read-model table cfg.Target (target, below) up to date with the whole event
// store. It reads the versions target holds, scans the event store (cfg.Segments parallel
// segments, strongly consistent), keeps of each stream the events after the version target
// holds, opens them through cfg.Source, and applies them in version order, streams in parallel
// (see Projector.Apply).
//
// Into a new table, that is a rebuild, and it can run while the live projector keeps its own
// table. Into a table that has read models, it applies only what the table lacks: every event
// stored before the scan started is in target when it returns nil, whether target got it from
// this run, an earlier one, or a projector writing to target at the same time (each change is
// conditional on the item's version, so every version applies once whoever writes it). That is
// the catch-up pass of the cutover (see the README, "The read side"): once no projector writes
// to another table any more, events stored after the scan started reach target through its
// projector, and target ends equal to a fold of the event store.
//
// It stops at the first error (an event that cannot be decoded, upcast, opened or projected, or
// ctx ending), leaving target with some streams further applied than others; every item stays a
// fold of a prefix of its stream, so running it again finishes the job.
func Rebuild(ctx context.Context, cfg RebuildConfig) (Progress, error) {
	api, eventsTable, target, reg, src, segments, report := cfg.API, cfg.EventsTable, cfg.Target, cfg.Registry, cfg.Source, cfg.Segments, cfg.Report
	if segments < 1 {
		return Progress{}, fmt.Errorf("rebuild %s: %d scan segments, want at least 1", target, segments)
	}
	have, err := versions(ctx, api, target)
	if err != nil {
		return Progress{}, err
	}
	var (
		mu      sync.Mutex
		streams = map[string][]store.Event{}
		scanned atomic.Int64
		wanted  atomic.Int64
		applied atomic.Int64
	)
	scan := func(segment int) error {
		in := &dynamodb.ScanInput{TableName: aws.String(eventsTable), Segment: aws.Int32(int32(segment)), TotalSegments: aws.Int32(int32(segments)), ConsistentRead: aws.Bool(true)}
		for page := dynamodb.NewScanPaginator(api, in); page.HasMorePages(); {
			out, err := page.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("scan %s segment %d: %w", eventsTable, segment, err)
			}
			for _, it := range out.Items {
				e, err := store.DecodeItem(it)
				if err != nil {
					return err
				}
				if e.Version <= have[e.StreamID] {
					continue // target has it: neither opened nor written again
				}
				if err := reg.Upcast(&e); err != nil {
					return err
				}
				if err := src.Open(ctx, &e); err != nil {
					return err
				}
				wanted.Add(1)
				mu.Lock()
				streams[e.StreamID] = append(streams[e.StreamID], e)
				mu.Unlock()
			}
			if n := scanned.Add(int64(len(out.Items))); report != nil {
				report(Progress{Scanned: n})
			}
		}
		return nil
	}
	if err := parallel(segments, segments, scan); err != nil {
		return Progress{Scanned: scanned.Load()}, err
	}
	ids := make([]string, 0, len(streams))
	for id, evs := range streams {
		sort.Slice(evs, func(i, j int) bool { return evs[i].Version < evs[j].Version })
		ids = append(ids, id)
	}
	sort.Strings(ids)
	total, all := wanted.Load(), scanned.Load()
	p := New(api, target, src)
	err = parallel(len(ids), segments, func(i int) error {
		for _, e := range streams[ids[i]] {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := p.Apply(ctx, e); err != nil {
				return err
			}
			if n := applied.Add(1); report != nil && n%100 == 0 {
				report(Progress{Scanned: all, Applied: n, Total: total})
			}
		}
		return nil
	})
	return Progress{Scanned: all, Applied: applied.Load(), Total: total}, err
}

// versions returns the version of every item of a read-model table.
func versions(ctx context.Context, api ScanAPI, table string) (map[string]int64, error) {
	out := map[string]int64{}
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("#pk, #v"), ExpressionAttributeNames: map[string]string{"#pk": AttrKey, "#v": AttrVersion}}
	for page := dynamodb.NewScanPaginator(api, in); page.HasMorePages(); {
		p, err := page.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		for _, it := range p.Items {
			var cur struct {
				PK string `dynamodbav:"pk"`
				V  int64  `dynamodbav:"v"`
			}
			if err := attributevalue.UnmarshalMap(it, &cur); err != nil {
				return nil, fmt.Errorf("read model in %s: %w", table, err)
			}
			out[cur.PK] = cur.V
		}
	}
	return out, nil
}

// parallel runs f(0..n-1) on at most workers goroutines and returns the first error; after it,
// no further f starts.
func parallel(n, workers int, f func(int) error) error {
	var (
		wg     sync.WaitGroup
		next   atomic.Int64
		failed atomic.Bool
		first  error
		once   sync.Once
	)
	for w := 0; w < max(1, min(workers, n)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err; failed.Store(true) })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// Comparison is what Verify found.
type Comparison struct {
	// Equal items are at the same version with the same content in both tables.
	Equal int
	// Behind counts items the live table has at an older version than the rebuilt one, or not at
	// all (its projector has not caught up yet); Ahead, items live has at a newer version, and
	// Missing, items only live has (both: events appended after the rebuild's scan; running the
	// rebuild again into the same table applies them).
	Behind, Ahead, Missing int
	// Different lists the items at the same version whose content differs: a projection bug.
	Different []string
}

// Verify compares a rebuilt read-model table with the live one, item by item.
func Verify(ctx context.Context, api ScanAPI, live, rebuilt string) (Comparison, error) {
	a, err := scanAll(ctx, api, live)
	if err != nil {
		return Comparison{}, err
	}
	b, err := scanAll(ctx, api, rebuilt)
	if err != nil {
		return Comparison{}, err
	}
	var c Comparison
	for pk, want := range b {
		got, ok := a[pk]
		switch {
		case !ok || got.v < want.v:
			c.Behind++
		case got.v > want.v:
			c.Ahead++
		case reflect.DeepEqual(got.item, want.item):
			c.Equal++
		default:
			c.Different = append(c.Different, pk)
		}
	}
	for pk := range a {
		if _, ok := b[pk]; !ok {
			c.Missing++
		}
	}
	sort.Strings(c.Different)
	return c, nil
}

type versioned struct {
	v    int64
	item map[string]any
}

func scanAll(ctx context.Context, api ScanAPI, table string) (map[string]versioned, error) {
	out := map[string]versioned{}
	for page := dynamodb.NewScanPaginator(api, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)}); page.HasMorePages(); {
		p, err := page.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		for _, it := range p.Items {
			var m map[string]any
			if err := attributevalue.UnmarshalMap(it, &m); err != nil {
				return nil, err
			}
			pk, _ := m[AttrKey].(string)
			v, _ := m[AttrVersion].(float64)
			out[pk] = versioned{v: int64(v), item: m}
		}
	}
	return out, nil
}
