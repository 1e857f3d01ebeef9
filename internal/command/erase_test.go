package command_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/store"
)

// erasures records the subjects an Eraser was asked to erase.
type erasures struct {
	mu       sync.Mutex
	subjects []string
}

func (e *erasures) Erase(_ context.Context, subject string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.subjects = append(e.subjects, subject)
	return nil
}

func (e *erasures) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.subjects
	e.subjects = nil
	return s
}

// TestEraseUserValidatesTheIDFirst: an ID that cannot be a user's is not found, and nothing is
// erased for it; a well-formed ID that is no user still has its key erased (it may be a customer
// of orders), and a user is erased.
func TestEraseUserValidatesTheIDFirst(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(mustRegistry(t), nil)
	eraser := &erasures{}
	svc := mustServiceWith(t, command.Config{Store: st, EmailKey: testKey, Eraser: eraser})
	user := ids.New()
	if _, err := svc.RegisterUser(ctx, as(user), domain.RegisterUser{UserID: user, Email: "e@example.com", Name: "E"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "\x00", "%00", "..", "ü☃", strings.Repeat("A", 2000), "a/b", user + " ", "-" + user} {
		if _, err := svc.EraseUser(ctx, op(), id); !errors.Is(err, command.ErrNotFound) {
			t.Fatalf("EraseUser(%.40q) = %v, want ErrNotFound", id, err)
		}
		if got := eraser.take(); len(got) != 0 {
			t.Fatalf("EraseUser(%.40q) erased %q", id, got)
		}
	}
	// A well-formed ID that is no user (a customer named on orders): erased, and recorded.
	other := ids.New()
	if res, err := svc.EraseUser(ctx, op(), other); err != nil || res.Version != 1 || len(res.EventIDs) != 1 {
		t.Fatalf("EraseUser of a well-formed ID that is no user = %+v, %v; want its erasure recorded at version 1", res, err)
	}
	if got := eraser.take(); len(got) != 1 || got[0] != other {
		t.Fatalf("erased %q, want the key of %s", got, other)
	}
	res, err := svc.EraseUser(ctx, op(), user)
	if err != nil || len(res.EventIDs) != 1 {
		t.Fatalf("EraseUser of the user = %+v, %v", res, err)
	}
	if got := eraser.take(); len(got) != 1 || got[0] != user {
		t.Fatalf("erased %q, want the key of %s", got, user)
	}
}
