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

// Progress is reported while a rebuild runs.
type Progress struct {
	Scanned, Applied, Total int64
}

// Rebuild reads the whole event store with a parallel scan of segments segments, orders each
// stream's events by version, and applies them to the read-model table target, streams in
// parallel. It can run while the live projector keeps its own table. Writes are conditional on
// versions, so running it again into the same table is safe and applies only what the table
// lacks: after cutting the projector over to target, a second run catches up with everything
// appended before the cutover, and the projector takes care of the rest.
// report, when not nil, is called now and then from the rebuild's goroutines.
func Rebuild(ctx context.Context, api ScanAPI, eventsTable, target string, reg *store.Registry, events Events, segments int, report func(Progress)) (Progress, error) {
	var (
		mu       sync.Mutex
		streams  = map[string][]store.Event{}
		progress Progress
		scanned  atomic.Int64
		applied  atomic.Int64
	)
	scan := func(segment int) error {
		in := &dynamodb.ScanInput{TableName: aws.String(eventsTable), Segment: aws.Int32(int32(segment)), TotalSegments: aws.Int32(int32(segments)), ConsistentRead: aws.Bool(true)}
		for page := dynamodb.NewScanPaginator(api, in); page.HasMorePages(); {
			out, err := page.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("scan segment %d: %w", segment, err)
			}
			for _, it := range out.Items {
				e, err := store.DecodeItem(it)
				if err == nil {
					err = reg.Upcast(&e)
				}
				if err != nil {
					return err
				}
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
		return progress, err
	}
	ids := make([]string, 0, len(streams))
	for id, evs := range streams {
		sort.Slice(evs, func(i, j int) bool { return evs[i].Version < evs[j].Version })
		ids = append(ids, id)
	}
	sort.Strings(ids)
	total := scanned.Load()
	p := New(api, target, events)
	err := parallel(len(ids), segments, func(i int) error {
		for _, e := range streams[ids[i]] {
			if err := p.Apply(ctx, e); err != nil {
				return err
			}
			if n := applied.Add(1); report != nil && n%100 == 0 {
				report(Progress{Scanned: total, Applied: n, Total: total})
			}
		}
		return nil
	})
	progress = Progress{Scanned: total, Applied: applied.Load(), Total: total}
	return progress, err
}

// parallel runs f(0..n-1) on at most workers goroutines and returns the first error.
func parallel(n, workers int, f func(int) error) error {
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		first error
		once  sync.Once
	)
	for w := 0; w < max(1, min(workers, n)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
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
			pk, _ := m["pk"].(string)
			v, _ := m["v"].(float64)
			out[pk] = versioned{v: int64(v), item: m}
		}
	}
	return out, nil
}
