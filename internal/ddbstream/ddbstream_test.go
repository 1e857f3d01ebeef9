package ddbstream_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	streams "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/eventfold/eventfold/internal/ddbstream"
	"github.com/eventfold/eventfold/internal/store"
)

// streamsValue converts aws-lambda-go's attribute value to the DynamoDB Streams API's, for
// building the records the Streams API would return.
func streamsValue(t *testing.T, v events.DynamoDBAttributeValue) streams.AttributeValue {
	t.Helper()
	switch v.DataType() {
	case events.DataTypeString:
		return &streams.AttributeValueMemberS{Value: v.String()}
	case events.DataTypeNumber:
		return &streams.AttributeValueMemberN{Value: v.Number()}
	case events.DataTypeBinary:
		return &streams.AttributeValueMemberB{Value: v.Binary()}
	case events.DataTypeBoolean:
		return &streams.AttributeValueMemberBOOL{Value: v.Boolean()}
	case events.DataTypeNull:
		return &streams.AttributeValueMemberNULL{Value: true}
	case events.DataTypeStringSet:
		return &streams.AttributeValueMemberSS{Value: v.StringSet()}
	case events.DataTypeNumberSet:
		return &streams.AttributeValueMemberNS{Value: v.NumberSet()}
	case events.DataTypeBinarySet:
		return &streams.AttributeValueMemberBS{Value: v.BinarySet()}
	case events.DataTypeList:
		var l []streams.AttributeValue
		for _, e := range v.List() {
			l = append(l, streamsValue(t, e))
		}
		return &streams.AttributeValueMemberL{Value: l}
	case events.DataTypeMap:
		return &streams.AttributeValueMemberM{Value: streamsImage(t, v.Map())}
	}
	t.Fatalf("unknown attribute type %v", v.DataType())
	return nil
}

func streamsImage(t *testing.T, img map[string]events.DynamoDBAttributeValue) map[string]streams.AttributeValue {
	t.Helper()
	if img == nil {
		return nil
	}
	out := map[string]streams.AttributeValue{}
	for k, v := range img {
		out[k] = streamsValue(t, v)
	}
	return out
}

// TestLambdaJSONDecodesLikeTheLambdaSample builds, from aws-lambda-go's own sample event
// (testdata/dynamodb-event.json, copied from its events/testdata), the stream records DynamoDB
// Streams would return, renders them as the runner delivers them, and decodes them with
// aws-lambda-go: the result must equal the sample.
func TestLambdaJSONDecodesLikeTheLambdaSample(t *testing.T) {
	data, err := os.ReadFile("testdata/dynamodb-event.json")
	if err != nil {
		t.Fatal(err)
	}
	var sample events.DynamoDBEvent
	if err := json.Unmarshal(data, &sample); err != nil {
		t.Fatal(err)
	}
	for i, want := range sample.Records {
		c := want.Change
		rec := streams.Record{
			AwsRegion:    aws.String(want.AWSRegion),
			EventID:      aws.String(want.EventID),
			EventName:    streams.OperationType(want.EventName),
			EventSource:  aws.String(want.EventSource),
			EventVersion: aws.String(want.EventVersion),
			Dynamodb: &streams.StreamRecord{
				ApproximateCreationDateTime: aws.Time(c.ApproximateCreationDateTime.Time),
				Keys:                        streamsImage(t, c.Keys),
				NewImage:                    streamsImage(t, c.NewImage),
				OldImage:                    streamsImage(t, c.OldImage),
				SequenceNumber:              aws.String(c.SequenceNumber),
				SizeBytes:                   aws.Int64(c.SizeBytes),
				StreamViewType:              streams.StreamViewType(c.StreamViewType),
			},
		}
		if want.UserIdentity != nil {
			rec.UserIdentity = &streams.Identity{Type: aws.String(want.UserIdentity.Type), PrincipalId: aws.String(want.UserIdentity.PrincipalID)}
		}
		var got events.DynamoDBEventRecord
		if err := json.Unmarshal(ddbstream.LambdaJSON(rec, want.EventSourceArn), &got); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("record %d decodes as\n%+v\nwant\n%+v", i, got, want)
		}
		// The sample's images hold every attribute type: Item and Image must give them back.
		for _, img := range []map[string]events.DynamoDBAttributeValue{c.Keys, c.NewImage, c.OldImage} {
			if img != nil {
				roundTrip(t, img)
			}
		}
	}
	if sample.Records[0].Change.ApproximateCreationDateTime.Time.Equal(time.Time{}) {
		t.Fatal("the sample has no creation time: the comparison proves little")
	}
}

// roundTrip checks that a (non-nil) image comes back the same through Item and Image, and
// through the Streams API's shape and LambdaJSON.
func roundTrip(t *testing.T, img map[string]events.DynamoDBAttributeValue) {
	t.Helper()
	want, err := json.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	item, err := ddbstream.Item(img)
	if err != nil {
		t.Fatalf("Item(%s): %v", want, err)
	}
	back, err := ddbstream.Image(item)
	if err != nil {
		t.Fatalf("Image(Item(%s)): %v", want, err)
	}
	if got, _ := json.Marshal(back); !bytes.Equal(got, want) {
		t.Fatalf("Image(Item(%s)) = %s", want, got)
	}
	rec := streams.Record{Dynamodb: &streams.StreamRecord{NewImage: streamsImage(t, img)}}
	var delivered events.DynamoDBEventRecord
	if err := json.Unmarshal(ddbstream.LambdaJSON(rec, "arn"), &delivered); err != nil {
		t.Fatalf("LambdaJSON of %s does not decode: %v", want, err)
	}
	if got, _ := json.Marshal(delivered.Change.NewImage); !bytes.Equal(got, want) {
		t.Fatalf("LambdaJSON delivers %s as %s", want, got)
	}
}

// FuzzRoundTrip holds both directions to each other on any image aws-lambda-go decodes.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte(`{"a":{"S":"x"},"b":{"N":"1"},"c":{"L":[{"M":{"d":{"BOOL":true}}}]},"e":{"B":"AAE="},"f":{"NULL":true},"g":{"SS":["a"]}}`))
	f.Add([]byte(`{"a":{"L":[]},"b":{"M":{}},"c":{"NS":["1","2"]},"d":{"BS":["AAE=",""]},"e":{"BOOL":false},"f":{"S":""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var img map[string]events.DynamoDBAttributeValue
		if json.Unmarshal(data, &img) != nil || img == nil {
			return
		}
		roundTrip(t, img)
	})
}

// FuzzItem holds the store's decoder to failing with ErrCorrupt on any image Item converts.
func FuzzItem(f *testing.F) {
	f.Add([]byte(`{"a":{"S":"x"},"b":{"N":"1"},"c":{"L":[{"M":{"d":{"BOOL":true}}}]},"e":{"B":"AAE="},"f":{"NULL":true},"g":{"SS":["a"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var img map[string]events.DynamoDBAttributeValue
		if json.Unmarshal(data, &img) != nil {
			return
		}
		item, err := ddbstream.Item(img)
		if err != nil {
			return
		}
		if _, err := store.DecodeItem(item); err != nil && !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("DecodeItem error %v is not ErrCorrupt", err)
		}
	})
}

// TestRecordOfAStoredEvent checks that the record of an event, sent through JSON as Lambda sends
// it, decodes to the same event.
func TestRecordOfAStoredEvent(t *testing.T) {
	want := store.Event{ID: "01J0000000000000000000000A", StreamID: "account-1", Version: 7, Type: "Deposited", SchemaVersion: 2,
		RecordedAt: time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC), CorrelationID: "c", CausationID: "d", Subject: "user-1",
		Data: []byte(`{"amount":1250}`)}
	rec, err := ddbstream.Record(want, "000000000000000000042")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var delivered events.DynamoDBEventRecord
	if err := json.Unmarshal(raw, &delivered); err != nil {
		t.Fatal(err)
	}
	switch c := delivered.Change; {
	case delivered.EventName != "INSERT" || delivered.EventSource != "aws:dynamodb" || c.SequenceNumber != "000000000000000000042":
		t.Fatalf("record %s", raw)
	case c.Keys["pk"].String() != "account-1" || c.Keys["v"].Number() != "7" || len(c.Keys) != 2:
		t.Fatalf("keys %v", c.Keys)
	}
	item, err := ddbstream.Item(delivered.Change.NewImage)
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.DecodeItem(item)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
}
