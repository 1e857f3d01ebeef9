package query

import (
	"encoding/base64"
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var listKey = map[string]types.AttributeValue{
	"pk": &types.AttributeValueMemberS{Value: "user-u1"}, "userStatus": &types.AttributeValueMemberS{Value: "active"},
}

// FuzzCursors feeds arbitrary cursors to both decoders: neither panics, each refuses what it did
// not issue with ErrBadCursor, an accepted audit cursor names its stream and re-encodes to
// itself, and no cursor is accepted by both.
func FuzzCursors(f *testing.F) {
	f.Add(encodeAuditCursor("account-a1", 101))
	list, _ := encodeCursor(listKey)
	f.Add(list)
	f.Add("")
	f.Add("!!")
	f.Add("eyJzdHJlYW0iOiJhY2NvdW50LWExIiwiZnJvbSI6MX0") // {"stream":"account-a1","from":1}
	f.Fuzz(func(t *testing.T, c string) {
		from, aerr := decodeAuditCursor(c, "account-a1")
		switch {
		case aerr == nil:
			if from < 2 || from > maxVersion {
				t.Fatalf("audit cursor %q accepted at version %d", c, from)
			}
			if again, err := decodeAuditCursor(encodeAuditCursor("account-a1", from), "account-a1"); err != nil || again != from {
				t.Fatalf("re-encoded cursor of %d: %d %v", from, again, err)
			}
			if _, err := decodeAuditCursor(c, "account-a2"); !errors.Is(err, ErrBadCursor) {
				t.Fatalf("audit cursor %q accepted for another stream: %v", c, err)
			}
		case !errors.Is(aerr, ErrBadCursor):
			t.Fatalf("audit cursor %q: %v, want ErrBadCursor", c, aerr)
		}
		start, lerr := decodeCursor(c, "userStatus", "active")
		if lerr != nil && !errors.Is(lerr, ErrBadCursor) {
			t.Fatalf("list cursor %q: %v, want ErrBadCursor", c, lerr)
		}
		if c != "" && aerr == nil && lerr == nil {
			t.Fatalf("cursor %q accepted by the audit trail and a list: %v", c, start)
		}
	})
}

func TestCursorsOfOneKindOnly(t *testing.T) {
	audit := encodeAuditCursor("user-u1", 5)
	if _, err := decodeCursor(audit, "userStatus", "active"); !errors.Is(err, ErrBadCursor) {
		t.Errorf("a list took an audit cursor: %v", err)
	}
	list, err := encodeCursor(listKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeAuditCursor(list, "user-u1"); !errors.Is(err, ErrBadCursor) {
		t.Errorf("the audit trail took a list cursor: %v", err)
	}
	if from, err := decodeAuditCursor(audit, "user-u1"); err != nil || from != 5 {
		t.Errorf("own cursor: %d %v", from, err)
	}
}

func cursorOf(json string) string { return base64.RawURLEncoding.EncodeToString([]byte(json)) }

// TestDecodeCursor: a cursor is read as strictly as a request body — one object, each name
// once, valid UTF-8, nothing after it — and must name the item key and the list's index key.
func TestDecodeCursor(t *testing.T) {
	good := map[string]types.AttributeValue{
		"pk":         &types.AttributeValueMemberS{Value: "user-u1"},
		"userStatus": &types.AttributeValueMemberS{Value: "active"},
	}
	tests := []struct {
		name, cursor string
		want         map[string]types.AttributeValue
	}{
		{"none", "", nil},
		{"issued", cursorOf(`{"pk":"user-u1","userStatus":"active"}`), good},
		{"not base64", "!!", nil},
		{"not JSON", cursorOf(`{"pk":`), nil},
		{"another list", cursorOf(`{"pk":"user-u1","userStatus":"deactivated"}`), nil},
		{"duplicate key", cursorOf(`{"pk":"user-u1","userStatus":"deactivated","userStatus":"active"}`), nil},
		{"duplicate pk", cursorOf(`{"pk":"user-u1","pk":"user-u2","userStatus":"active"}`), nil},
		{"key in another case", cursorOf(`{"PK":"user-u1","userStatus":"active"}`), nil},
		{"trailing data", cursorOf(`{"pk":"user-u1","userStatus":"active"}{}`), nil},
		{"invalid UTF-8", cursorOf("{\"pk\":\"user-u1\",\"userStatus\":\"active\",\"\xff\":\"\"}"), nil},
		{"not strings", cursorOf(`{"pk":1,"userStatus":"active"}`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeCursor(tt.cursor, "userStatus", "active")
			if tt.want == nil && tt.cursor != "" {
				if !errors.Is(err, ErrBadCursor) {
					t.Fatalf("decodeCursor = %v, %v; want ErrBadCursor", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decodeCursor = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// FuzzDecodeCursor: decodeCursor never panics, and what it accepts, encoded again, is the same
// cursor's meaning.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(cursorOf(`{"pk":"user-u1","userStatus":"active"}`))
	f.Add(cursorOf(`{"pk":"user-u1","pk":"user-u2","userStatus":"active"}`))
	f.Fuzz(func(t *testing.T, c string) {
		start, err := decodeCursor(c, "userStatus", "active")
		if err != nil || start == nil {
			return
		}
		again, err := encodeCursor(start)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeCursor(again, "userStatus", "active")
		if err != nil || !reflect.DeepEqual(back, start) {
			t.Fatalf("cursor %q decoded to %v, re-encoded to %q, decoded to %v, %v", c, start, again, back, err)
		}
	})
}

// FuzzRunsCursor: decodeRunsCursor never panics, refuses with ErrBadCursor, accepts only a run's
// key in the one partition before the listing's now, re-encodes to the same key, and takes no
// cursor a list or the audit trail takes.
func FuzzRunsCursor(f *testing.F) {
	const before = "2026-05-01T09:20:00.000000000Z"
	f.Add(cursorOf(`{"pk":"fulfilment-o1","waitingPartition":"runs","waitingUntil":"2026-05-01T09:15:00.000000000Z"}`))
	f.Add(cursorOf(`{"pk":"fulfilment-o1","waitingPartition":"runs","waitingUntil":"2026-05-01T09:25:00.000000000Z"}`))
	f.Add(cursorOf(`{"pk":"user-u1","userStatus":"active"}`))
	f.Add(encodeAuditCursor("fulfilment-o1", 2))
	f.Fuzz(func(t *testing.T, c string) {
		start, err := decodeRunsCursor(c, before)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("runs cursor %q: %v, want ErrBadCursor", c, err)
			}
			return
		}
		if start == nil {
			return
		}
		plain := map[string]string{}
		for k, v := range start {
			plain[k] = v.(*types.AttributeValueMemberS).Value
		}
		if len(plain) != 3 || plain["waitingPartition"] != "runs" || plain["waitingUntil"] >= before || plain["pk"][:len("fulfilment-")] != "fulfilment-" {
			t.Fatalf("runs cursor %q accepted as %v", c, plain)
		}
		again, err := encodeCursor(start)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := decodeRunsCursor(again, before); err != nil || !reflect.DeepEqual(back, start) {
			t.Fatalf("runs cursor %q re-encoded to %q: %v, %v", c, again, back, err)
		}
		if _, err := decodeCursor(c, "userStatus", "active"); err == nil {
			t.Fatalf("runs cursor %q taken by a list", c)
		}
		if _, err := decodeAuditCursor(c, plain["pk"]); err == nil {
			t.Fatalf("runs cursor %q taken by the audit trail", c)
		}
	})
}
