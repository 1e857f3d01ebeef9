package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/store"
)

// keysTable returns the keys table's items as "subject:wrapped" or "subject:tombstone", sorted.
func (hs *harness) keysTable(t *testing.T) []string {
	t.Helper()
	var out []string
	in := &dynamodb.ScanInput{TableName: aws.String(hs.env.Refs["KeysTable"]), ConsistentRead: aws.Bool(true)}
	for p := dynamodb.NewScanPaginator(hs.client, in); p.HasMorePages(); {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			state := "tombstone"
			if _, ok := it["wrapped"]; ok {
				state = "wrapped"
			}
			out = append(out, it["pk"].(*ddbtypes.AttributeValueMemberS).Value+":"+state)
		}
	}
	sort.Strings(out)
	return out
}

// short shortens a keys table listing for a failure message.
func short(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		if len(s) > 48 {
			s = fmt.Sprintf("%s…(%d bytes)", s[:40], len(s))
		}
		out[i] = s
	}
	return fmt.Sprintf("%d items %v", len(items), out)
}

// registeredUsers counts the UserRegistered events in the events table.
func (hs *harness) registeredUsers(t *testing.T) int {
	t.Helper()
	n := 0
	in := &dynamodb.ScanInput{TableName: aws.String(hs.env.Refs["EventsTable"]), ConsistentRead: aws.Bool(true)}
	for p := dynamodb.NewScanPaginator(hs.client, in); p.HasMorePages(); {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			if e, err := store.DecodeItem(it); err == nil && e.Type == domain.TypeUserRegistered {
				n++
			}
		}
	}
	return n
}

// TestRacingRegistrationsOfOneEmailLeaveOneKey: 16 registrations of one email race; one user is
// registered, the others are refused, and the keys table holds the one user's key only.
func TestRacingRegistrationsOfOneEmailLeaveOneKey(t *testing.T) {
	hs := newHarness(t)
	const racers = 16
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		mu       sync.Mutex
		statuses = map[int]int{}
		created  string
	)
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 16 users, one address.
			req := as(request(t, "POST /users", `{"email":"race@example.com","name":"Racer"}`, nil), fmt.Sprintf("racer-%d", i))
			<-start
			resp, err := hs.h.Handle(context.Background(), req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				statuses[-1]++
				return
			}
			statuses[resp.StatusCode]++
			if resp.StatusCode == http.StatusCreated {
				created = strings.TrimPrefix(resp.Headers["Location"], "/users/")
			}
		}()
	}
	close(start)
	wg.Wait()
	if statuses[http.StatusCreated] != 1 || statuses[http.StatusUnprocessableEntity] != racers-1 {
		t.Fatalf("statuses %v, want one 201 and %d 422", statuses, racers-1)
	}
	if keys := hs.keysTable(t); len(keys) != 1 || keys[0] != created+":wrapped" {
		t.Fatalf("keys table after %d racing registrations of one email: %s, want the one key of %s", racers, short(keys), created)
	}
	if n := hs.registeredUsers(t); n != 1 {
		t.Fatalf("%d users registered, want 1", n)
	}
}

// TestRefusedRegistrationLeavesNoKey: a registration refused for a taken email stores nothing,
// not even a key.
func TestRefusedRegistrationLeavesNoKey(t *testing.T) {
	hs := newHarness(t)
	first := hs.do(t, request(t, "POST /users", `{"email":"taken@example.com","name":"First"}`, nil))
	wantStatus(t, first, http.StatusCreated, "")
	second := hs.do(t, as(request(t, "POST /users", `{"email":"Taken@Example.com","name":"Second"}`, nil), "auth0|second"))
	wantStatus(t, second, http.StatusUnprocessableEntity, httpapi.TypeRulePrefix+"email-taken")
	if keys := hs.keysTable(t); len(keys) != 1 || keys[0] != first.ID+":wrapped" {
		t.Fatalf("keys table: %s, want only the first user's key", short(keys))
	}
}

// TestEraseOfImpossibleIDWritesNothing: DELETE /users/{id} with an ID that cannot be a user's
// answers 404 and leaves the keys table as it was: no tombstone for a string that is no ID.
func TestEraseOfImpossibleIDWritesNothing(t *testing.T) {
	hs := newHarness(t)
	user := hs.do(t, request(t, "POST /users", `{"email":"kept@example.com","name":"Kept"}`, nil))
	wantStatus(t, user, http.StatusCreated, "")
	before := hs.keysTable(t)
	for name, id := range map[string]string{
		"percent-encoded NUL": "%00",
		"NUL":                 "\x00",
		"dot-dot":             "..",
		"non-ASCII":           "ü☃",
		"2,000 As":            strings.Repeat("A", 2000),
		"dot":                 ".",
		"a leading separator": "|" + user.ID,
		"129 characters":      strings.Repeat("a", 129),
		"a slash":             user.ID + "/x",
		"a space":             user.ID + " x",
		"empty":               "",
	} {
		t.Run(name, func(t *testing.T) {
			wantStatus(t, hs.do(t, request(t, "DELETE /users/{id}", "", map[string]string{"id": id})), http.StatusNotFound, httpapi.TypeNotFound)
			if after := hs.keysTable(t); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Fatalf("keys table changed from %s to %s", short(before), short(after))
			}
		})
	}
	// A well-formed ID that is no user (a customer ID on orders, say) still has its key erased,
	// and the erasure recorded; the user's own erasure works as before.
	other := store.NewIDs(nil).New()
	wantStatus(t, hs.do(t, request(t, "DELETE /users/{id}", "", map[string]string{"id": other})), http.StatusOK, "")
	wantStatus(t, hs.do(t, request(t, "DELETE /users/{id}", "", map[string]string{"id": user.ID})), http.StatusOK, "")
	want := []string{other + ":tombstone", user.ID + ":tombstone"}
	sort.Strings(want)
	if after := hs.keysTable(t); strings.Join(after, ",") != strings.Join(want, ",") {
		t.Fatalf("keys table after erasures: %s, want %v", short(after), want)
	}
}
