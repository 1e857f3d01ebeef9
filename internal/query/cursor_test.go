package query

import (
	"encoding/base64"
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

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
