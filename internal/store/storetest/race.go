package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventfold/eventfold/internal/store"
)

func testRacingRounds(t *testing.T, open Opener) {
	const writers, rounds = 32, 5
	stream := StreamID("race")
	stores := make([]Store, writers)
	for i := range stores {
		stores[i] = open(V1, nil)
	}
	for round := int64(0); round < rounds; round++ {
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			wins    atomic.Int64
			losses  atomic.Int64
			unknown = make(chan error, writers)
			winner  = make(chan string, writers)
		)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(s Store) {
				defer wg.Done()
				e := Note("racer")
				<-start
				_, err := Append(context.Background(), s, stream, round, e)
				switch {
				case err == nil:
					wins.Add(1)
					winner <- e.ID
				case errors.Is(err, store.ErrVersionConflict):
					losses.Add(1)
				default:
					unknown <- err
				}
			}(stores[w])
		}
		close(start)
		wg.Wait()
		close(unknown)
		for err := range unknown {
			t.Fatalf("round %d: unexpected error %v", round, err)
		}
		if wins.Load() != 1 || losses.Load() != writers-1 {
			t.Fatalf("round %d: %d winners and %d conflicts, want 1 and %d", round, wins.Load(), losses.Load(), writers-1)
		}
		got := mustLoad(t, open(V1, nil), stream, store.Span{})
		if got[round].ID != <-winner {
			t.Fatalf("round %d: stored event is not the winner's", round)
		}
	}
	wantVersions(t, mustLoad(t, open(V1, nil), stream, store.Span{}), 1, rounds)
}

func testConcurrentWriters(t *testing.T, open Opener) {
	const writers, each = 32, 3
	stream := StreamID("race")
	var (
		wg   sync.WaitGroup
		errs = make(chan error, writers)
		sent sync.Map
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := open(V1, nil)
			c := context.Background()
			for i := 0; i < each; i++ {
				e := Note("w")
				sent.Store(e.ID, true)
				for attempt := 0; ; attempt++ {
					if attempt > 10*writers {
						errs <- fmt.Errorf("gave up after %d attempts", attempt)
						return
					}
					cur, err := s.Load(c, stream, store.Span{})
					if err != nil {
						errs <- err
						return
					}
					_, err = Append(c, s, stream, int64(len(cur)), e)
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrVersionConflict) {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := mustLoad(t, open(V1, nil), stream, store.Span{})
	wantVersions(t, got, 1, writers*each)
	seen := map[string]bool{}
	for _, e := range got {
		if _, ok := sent.Load(e.ID); !ok || seen[e.ID] {
			t.Fatalf("event %s at version %d is unknown or stored twice", e.ID, e.Version)
		}
		seen[e.ID] = true
	}
}
