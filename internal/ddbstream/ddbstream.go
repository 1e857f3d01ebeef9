// Package ddbstream converts DynamoDB stream records between the three shapes eventfold meets them
// in: the DynamoDB Streams API's (what the local runner polls), the JSON Lambda delivers, which
// aws-lambda-go decodes as events.DynamoDBEventRecord (what the consumers are handed), and the
// DynamoDB API's attribute values (what the event store encodes and decodes items with).
//
//   - [Item] turns a delivered record's image into an item the store's decoder reads; [Image] is
//     its inverse.
//   - [Record] is the record DynamoDB Streams makes of a stored event, as Lambda delivers it.
//   - [LambdaJSON] renders a Streams API record as Lambda delivers it.
package ddbstream

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streams "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/eventfold/eventfold/internal/store"
)

// Item converts a delivered record's image (its NewImage, say) to the DynamoDB API's attribute
// values, so the store's own decoder reads it. It returns an error naming the attribute when a
// value has no DynamoDB type.
func Item(img map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	out := make(map[string]types.AttributeValue, len(img))
	for k, v := range img {
		av, err := value(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", k, err)
		}
		out[k] = av
	}
	return out, nil
}

func value(v events.DynamoDBAttributeValue) (types.AttributeValue, error) {
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	case events.DataTypeList:
		var l []types.AttributeValue
		for _, e := range v.List() {
			av, err := value(e)
			if err != nil {
				return nil, err
			}
			l = append(l, av)
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	case events.DataTypeMap:
		m, err := Item(v.Map())
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberM{Value: m}, nil
	}
	return nil, errors.New("unknown attribute type")
}

// Image converts an item to the image a delivered record holds of it: the inverse of [Item]. It
// returns an error naming the attribute when a value is not one of DynamoDB's types.
func Image(item map[string]types.AttributeValue) (map[string]events.DynamoDBAttributeValue, error) {
	out := make(map[string]events.DynamoDBAttributeValue, len(item))
	for k, v := range item {
		av, err := attribute(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", k, err)
		}
		out[k] = av
	}
	return out, nil
}

func attribute(v types.AttributeValue) (events.DynamoDBAttributeValue, error) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value), nil
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value), nil
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value), nil
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value), nil
	case *types.AttributeValueMemberNULL:
		return events.NewNullAttribute(), nil
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value), nil
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value), nil
	case *types.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(v.Value), nil
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, 0, len(v.Value))
		for _, e := range v.Value {
			av, err := attribute(e)
			if err != nil {
				return events.DynamoDBAttributeValue{}, err
			}
			l = append(l, av)
		}
		return events.NewListAttribute(l), nil
	case *types.AttributeValueMemberM:
		m, err := Image(v.Value)
		if err != nil {
			return events.DynamoDBAttributeValue{}, err
		}
		return events.NewMapAttribute(m), nil
	}
	return events.DynamoDBAttributeValue{}, errors.New("unknown attribute type")
}

// Record returns the stream record DynamoDB Streams makes of a stored event (an INSERT with its
// NEW_IMAGE), as Lambda delivers it: for replaying events through a consumer, and for tests. It
// returns the store's error when the event cannot be encoded.
func Record(e store.Event, sequence string) (events.DynamoDBEventRecord, error) {
	item, err := store.EncodeItem(e)
	if err != nil {
		return events.DynamoDBEventRecord{}, err
	}
	img, err := Image(item)
	if err != nil {
		return events.DynamoDBEventRecord{}, err
	}
	return events.DynamoDBEventRecord{
		EventName: string(events.DynamoDBOperationTypeInsert), EventSource: "aws:dynamodb", EventVersion: "1.1",
		Change: events.DynamoDBStreamRecord{
			Keys: map[string]events.DynamoDBAttributeValue{store.AttrStream: img[store.AttrStream], store.AttrVersion: img[store.AttrVersion]}, NewImage: img,
			SequenceNumber: sequence, StreamViewType: string(events.DynamoDBStreamViewTypeNewImage),
		},
	}, nil
}

// LambdaJSON renders a record read from the DynamoDB Streams API as Lambda delivers it to a
// function of the stream's event source mapping (see aws-lambda-go's events.DynamoDBEventRecord).
// eventVersion defaults to 1.1 when the record has none.
func LambdaJSON(rec streams.Record, streamARN string) json.RawMessage {
	d := rec.Dynamodb
	change := map[string]any{
		"ApproximateCreationDateTime": aws.ToTime(d.ApproximateCreationDateTime).Unix(),
		"SequenceNumber":              aws.ToString(d.SequenceNumber),
		"SizeBytes":                   aws.ToInt64(d.SizeBytes),
		"StreamViewType":              string(d.StreamViewType),
	}
	if d.Keys != nil {
		change["Keys"] = imageJSON(d.Keys)
	}
	if d.NewImage != nil {
		change["NewImage"] = imageJSON(d.NewImage)
	}
	if d.OldImage != nil {
		change["OldImage"] = imageJSON(d.OldImage)
	}
	out := map[string]any{
		"eventID":        aws.ToString(rec.EventID),
		"eventName":      string(rec.EventName),
		"eventVersion":   aws.ToString(rec.EventVersion),
		"eventSource":    "aws:dynamodb",
		"awsRegion":      aws.ToString(rec.AwsRegion),
		"dynamodb":       change,
		"eventSourceARN": streamARN,
	}
	if out["eventVersion"] == "" {
		out["eventVersion"] = "1.1"
	}
	if rec.UserIdentity != nil {
		out["userIdentity"] = map[string]string{"type": aws.ToString(rec.UserIdentity.Type), "principalId": aws.ToString(rec.UserIdentity.PrincipalId)}
	}
	b, _ := json.Marshal(out)
	return b
}

func imageJSON(img map[string]streams.AttributeValue) map[string]any {
	out := make(map[string]any, len(img))
	for k, v := range img {
		out[k] = avJSON(v)
	}
	return out
}

// avJSON is an attribute value in DynamoDB's JSON form ({"S": "x"}, {"N": "1"}, ...); []byte
// values marshal as base64, as DynamoDB's JSON has them.
func avJSON(v streams.AttributeValue) map[string]any {
	switch v := v.(type) {
	case *streams.AttributeValueMemberS:
		return map[string]any{"S": v.Value}
	case *streams.AttributeValueMemberN:
		return map[string]any{"N": v.Value}
	case *streams.AttributeValueMemberB:
		return map[string]any{"B": v.Value}
	case *streams.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": v.Value}
	case *streams.AttributeValueMemberNULL:
		return map[string]any{"NULL": v.Value}
	case *streams.AttributeValueMemberSS:
		return map[string]any{"SS": v.Value}
	case *streams.AttributeValueMemberNS:
		return map[string]any{"NS": v.Value}
	case *streams.AttributeValueMemberBS:
		return map[string]any{"BS": v.Value}
	case *streams.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			l[i] = avJSON(e)
		}
		return map[string]any{"L": l}
	case *streams.AttributeValueMemberM:
		return map[string]any{"M": imageJSON(v.Value)}
	}
	return map[string]any{"NULL": true}
}
