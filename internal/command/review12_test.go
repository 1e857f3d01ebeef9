package command_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/store"
)

// TestReview12EraseSubjectsOfOtherIssuers: subjects of other OpenID Connect issuers hold
// separators ("auth0|…", "google-oauth2|…", "a@b") that must not break the user's stream, the
// erasure of their key or the release of their address: each registers, is erased (their key
// exactly, nobody else's), and their address is free for someone else; a subject that is
// another's with a separator prefix ("a-b" against "a") stays apart.
func TestReview12EraseSubjectsOfOtherIssuers(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(mustRegistry(t), nil)
	eraser := &erasures{}
	svc := mustServiceWith(t, command.Config{Store: st, EmailKey: testKey, Eraser: eraser})
	for i, sub := range []string{"auth0|5f7c8ec7c33c6c004bbafe82", "google-oauth2|1234567890", "a@b.example", "a", "a-b"} {
		email := "s" + string(rune('0'+i)) + "@example.com"
		if _, err := svc.RegisterUser(ctx, as(sub), domain.RegisterUser{Email: email, Name: "S"}); err != nil {
			t.Fatalf("%s registers: %v", sub, err)
		}
		if sub == "a-b" {
			// "a" was erased already: "a-b" is not "a".
			if _, err := svc.ChangeEmail(ctx, as(sub), sub, domain.ChangeEmail{Email: "ab2@example.com"}); err != nil {
				t.Fatalf("a-b after a's erasure: %v", err)
			}
		}
		if _, err := svc.EraseUser(ctx, op(), sub); err != nil {
			t.Fatalf("erase %s: %v", sub, err)
		}
		if got := eraser.take(); len(got) != 1 || got[0] != sub {
			t.Fatalf("erasing %s erased the keys of %q", sub, got)
		}
		if _, err := svc.RegisterUser(ctx, as("next-"+sub), domain.RegisterUser{Email: email, Name: "N"}); err != nil {
			t.Fatalf("%s's address after their erasure: %v", sub, err)
		}
		if _, err := svc.RegisterUser(ctx, as(sub), domain.RegisterUser{Email: "again" + email, Name: "S"}); !errors.Is(err, domain.ErrExists) {
			t.Fatalf("%s registering after erasure: %v, want ErrExists", sub, err)
		}
	}
}
