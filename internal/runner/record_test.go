package runner

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// sdkValue converts aws-lambda-go's attribute value to the SDK's, for building stream records
// equal to a sample.
func sdkValue(t *testing.T, v events.DynamoDBAttributeValue) types.AttributeValue {
	t.Helper()
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}
	case events.DataTypeList:
		var l []types.AttributeValue
		for _, e := range v.List() {
			l = append(l, sdkValue(t, e))
		}
		return &types.AttributeValueMemberL{Value: l}
	case events.DataTypeMap:
		return &types.AttributeValueMemberM{Value: sdkImage(t, v.Map())}
	}
	t.Fatalf("unknown attribute type %v", v.DataType())
	return nil
}

func sdkImage(t *testing.T, img map[string]events.DynamoDBAttributeValue) map[string]types.AttributeValue {
	if img == nil {
		return nil
	}
	out := map[string]types.AttributeValue{}
	for k, v := range img {
		out[k] = sdkValue(t, v)
	}
	return out
}

// TestRecordsDecodeLikeTheLambdaSample builds, from aws-lambda-go's own sample event
// (testdata/dynamodb-event.json, copied from its events/testdata), the stream records DynamoDB
// Streams would return, renders them as the runner delivers them, and decodes them with
// aws-lambda-go: the result must equal the sample.
func TestRecordsDecodeLikeTheLambdaSample(t *testing.T) {
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
		rec := types.Record{
			AwsRegion:    aws.String(want.AWSRegion),
			EventID:      aws.String(want.EventID),
			EventName:    types.OperationType(want.EventName),
			EventSource:  aws.String(want.EventSource),
			EventVersion: aws.String(want.EventVersion),
			Dynamodb: &types.StreamRecord{
				ApproximateCreationDateTime: aws.Time(c.ApproximateCreationDateTime.Time),
				Keys:                        sdkImage(t, c.Keys),
				NewImage:                    sdkImage(t, c.NewImage),
				OldImage:                    sdkImage(t, c.OldImage),
				SequenceNumber:              aws.String(c.SequenceNumber),
				SizeBytes:                   aws.Int64(c.SizeBytes),
				StreamViewType:              types.StreamViewType(c.StreamViewType),
			},
		}
		if want.UserIdentity != nil {
			rec.UserIdentity = &types.Identity{Type: aws.String(want.UserIdentity.Type), PrincipalId: aws.String(want.UserIdentity.PrincipalID)}
		}
		var got events.DynamoDBEventRecord
		if err := json.Unmarshal(recordJSON(rec, want.EventSourceArn), &got); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("record %d decodes as\n%+v\nwant\n%+v", i, got, want)
		}
	}
	if sample.Records[0].Change.ApproximateCreationDateTime.Time.Equal(time.Time{}) {
		t.Fatal("the sample has no creation time: the comparison proves little")
	}
}

func TestFilterPatterns(t *testing.T) {
	doc := map[string]any{}
	json.Unmarshal([]byte(`{"eventName":"INSERT","dynamodb":{"NewImage":{"kind":{"S":"also-yes"},"n":{"N":"5"}},"Keys":{"pk":{"S":"a"}}},"num":7}`), &doc)
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{`{"eventName":["INSERT"]}`, true},
		{`{"eventName":["MODIFY","REMOVE"]}`, false},
		{`{"dynamodb":{"NewImage":{"kind":{"S":[{"prefix":"also-"}]}}}}`, true},
		{`{"dynamodb":{"NewImage":{"kind":{"S":[{"suffix":"yes"}]}}}}`, true},
		{`{"dynamodb":{"NewImage":{"kind":{"S":[{"anything-but":["also-yes"]}]}}}}`, false},
		{`{"dynamodb":{"NewImage":{"missing":[{"exists":false}]}}}`, true},
		{`{"dynamodb":{"NewImage":{"kind":[{"exists":true}]}}}`, true},
		{`{"num":[{"numeric":[">",5,"<=",7]}]}`, true},
		{`{"num":[{"numeric":[">",7]}]}`, false},
		{`{"eventName":"INSERT"}`, false}, // a leaf must be a list
		{`{"dynamodb":{"OldImage":{"kind":{"S":["x"]}}}}`, false},
	} {
		var p map[string]any
		if err := json.Unmarshal([]byte(tc.pattern), &p); err != nil {
			t.Fatal(err)
		}
		if got := matchPattern(p, doc); got != tc.want {
			t.Errorf("pattern %s = %v, want %v", tc.pattern, got, tc.want)
		}
	}
}

func TestRoutePriority(t *testing.T) {
	r := &Runner{}
	for _, k := range []string{"GET /a/{x}/{y}", "GET /a/b/{proxy+}", "ANY /a/b/c", "GET /a/b/c", "$default"} {
		if k == "$default" {
			r.routes = append(r.routes, route{key: k, method: "ANY"})
			continue
		}
		method, path, _ := strings.Cut(k, " ")
		r.routes = append(r.routes, route{key: k, method: method, segments: split(path)})
	}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/a/b/c", "GET /a/b/c"},
		{"POST", "/a/b/c", "ANY /a/b/c"},
		{"GET", "/a/q/c", "GET /a/{x}/{y}"},
		{"GET", "/a/b/c/d", "GET /a/b/{proxy+}"},
		{"GET", "/a/b", "$default"},
		{"DELETE", "/zzz", "$default"},
	} {
		rt, _ := r.match(tc.method, tc.path)
		if rt == nil || rt.key != tc.want {
			t.Errorf("%s %s matched %v, want %s", tc.method, tc.path, rt, tc.want)
		}
	}
}
