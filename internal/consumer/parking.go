package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ParkingAPI is the part of DynamoDB the parking table uses.
type ParkingAPI interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// ParkingTable keeps parked events in DynamoDB: partition key "pk" = the consumer, sort key "sk"
// = stream ID and zero-padded version, so one consumer's parked events list in stream order and
// parking the same event twice keeps one item.
type ParkingTable struct {
	api   ParkingAPI
	table string
}

var _ Parking = (*ParkingTable)(nil)

// NewParkingTable returns parking on table.
func NewParkingTable(api ParkingAPI, table string) *ParkingTable {
	return &ParkingTable{api: api, table: table}
}

type parkedItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	StreamID string `dynamodbav:"streamId"`
	Version  int64  `dynamodbav:"v"`
	Sequence string `dynamodbav:"sequence"`
	Record   string `dynamodbav:"record"`
	Error    string `dynamodbav:"error"`
	ParkedAt string `dynamodbav:"parkedAt"`
}

func sortKey(stream string, version int64) string { return fmt.Sprintf("%s#%019d", stream, version) }

// List returns a consumer's parked events, in stream and version order.
func (t *ParkingTable) List(ctx context.Context, consumer string) ([]Parked, error) {
	var out []Parked
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(t.table),
		KeyConditionExpression:    aws.String("pk = :c"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: consumer}},
		ConsistentRead:            aws.Bool(true),
	}
	for page := dynamodb.NewQueryPaginator(t.api, in); page.HasMorePages(); {
		p, err := page.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list parked events of %s: %w", consumer, err)
		}
		for _, it := range p.Items {
			var pi parkedItem
			if err := attributevalue.UnmarshalMap(it, &pi); err != nil {
				return nil, err
			}
			at, _ := time.Parse("2006-01-02T15:04:05.000Z07:00", pi.ParkedAt)
			out = append(out, Parked{Consumer: pi.PK, StreamID: pi.StreamID, Version: pi.Version, Sequence: pi.Sequence,
				Record: json.RawMessage(pi.Record), Error: pi.Error, ParkedAt: at})
		}
	}
	return out, nil
}

// Remove deletes a parked event, once replayed.
func (t *ParkingTable) Remove(ctx context.Context, p Parked) error {
	_, err := t.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(t.table), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: p.Consumer}, "sk": &types.AttributeValueMemberS{Value: sortKey(p.StreamID, p.Version)},
	}})
	if err != nil {
		return fmt.Errorf("remove parked %s at %d: %w", p.StreamID, p.Version, err)
	}
	return nil
}

// Park stores p, replacing an earlier parking of the same event.
func (t *ParkingTable) Park(ctx context.Context, p Parked) error {
	item, err := attributevalue.MarshalMap(parkedItem{
		PK: p.Consumer, SK: sortKey(p.StreamID, p.Version), StreamID: p.StreamID, Version: p.Version,
		Sequence: p.Sequence, Record: string(p.Record), Error: p.Error, ParkedAt: p.ParkedAt.Format("2006-01-02T15:04:05.000Z07:00"),
	})
	if err != nil {
		return err
	}
	if _, err := t.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(t.table), Item: item}); err != nil {
		return fmt.Errorf("park %s at %d: %w", p.StreamID, p.Version, err)
	}
	return nil
}
