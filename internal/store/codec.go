package store

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// EncodeItem returns the DynamoDB item that stores e.
func EncodeItem(e Event) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(item{
		Stream:  e.StreamID,
		Version: e.Version,
		ID:      e.ID,
		Type:    e.Type,
		Schema:  e.SchemaVersion,
		At:      e.RecordedAt.UTC().Format(TimeLayout),
		Corr:    e.CorrelationID,
		Cause:   e.CausationID,
		Subject: e.Subject,
		Data:    string(e.Data),
	})
}

// DecodeItem returns the event stored in a DynamoDB item, as stored (not upcast). It returns
// ErrCorrupt, wrapped, when the item is not a well-formed event item; the error never quotes the
// payload.
func DecodeItem(av map[string]types.AttributeValue) (Event, error) {
	var it item
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	at, err := time.Parse(time.RFC3339Nano, it.At)
	switch {
	case ValidStreamID(it.Stream) != nil:
		return Event{}, fmt.Errorf("%w: bad stream ID", ErrCorrupt)
	case it.Version < 1:
		return Event{}, fmt.Errorf("%w: %s: version %d", ErrCorrupt, it.Stream, it.Version)
	case it.ID == "" || it.Type == "" || it.Schema < 1 || it.Data == "":
		return Event{}, fmt.Errorf("%w: %s at version %d: missing id, type, schema or data", ErrCorrupt, it.Stream, it.Version)
	case err != nil:
		return Event{}, fmt.Errorf("%w: %s at version %d: bad recorded-at time", ErrCorrupt, it.Stream, it.Version)
	}
	return Event{
		ID:            it.ID,
		StreamID:      it.Stream,
		Version:       it.Version,
		Type:          it.Type,
		SchemaVersion: it.Schema,
		RecordedAt:    at,
		CorrelationID: it.Corr,
		CausationID:   it.Cause,
		Subject:       it.Subject,
		Data:          []byte(it.Data),
	}, nil
}

// itemSize returns the size DynamoDB accounts for an item: attribute names plus values, as in
// "Item sizes and formats" of the DynamoDB developer guide.
func itemSize(av map[string]types.AttributeValue) int {
	n := 0
	for name, v := range av {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		// Up to 38 significant digits, about one byte per two digits, plus one.
		return int(math.Ceil(float64(len(v.Value))/2)) + 1
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberM:
		n := 3
		for name, e := range v.Value {
			n += len(name) + valueSize(e) + 1
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += valueSize(e) + 1
		}
		return n
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	default:
		return 0
	}
}

func versionValue(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// EventKey is the primary key of the item of version v of stream in the events table.
func EventKey(stream string, v int64) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrStream: &types.AttributeValueMemberS{Value: stream}, AttrVersion: versionValue(v)}
}

// ItemKey is the primary key of a stream's item in the snapshots table, or of a claim's item in
// the claims table: pk alone.
func ItemKey(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrStream: &types.AttributeValueMemberS{Value: pk}}
}

// SnapshotOf returns the stream, version and last event ID of a snapshots-table item. It returns
// ErrCorrupt, wrapped, for an item that is not one.
func SnapshotOf(av map[string]types.AttributeValue) (stream string, version int64, eventID string, err error) {
	var it snapshotItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil || it.Stream == "" {
		return "", 0, "", fmt.Errorf("%w: not a snapshot item", ErrCorrupt)
	}
	return it.Stream, it.Version, it.EventID, nil
}

// ClaimOf returns the unique value and the owning stream of a claims-table item. It returns
// ErrCorrupt, wrapped, for an item that is not one.
func ClaimOf(av map[string]types.AttributeValue) (key, owner string, err error) {
	var it claimItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil || it.Key == "" || it.Owner == "" {
		return "", "", fmt.Errorf("%w: not a claim item", ErrCorrupt)
	}
	return it.Key, it.Owner, nil
}

// ClaimItem is the claims-table item by which stream owner holds the unique value key.
func ClaimItem(key, owner string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrStream: &types.AttributeValueMemberS{Value: key}, AttrOwner: &types.AttributeValueMemberS{Value: owner}}
}
