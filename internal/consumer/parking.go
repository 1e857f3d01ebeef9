package consumer

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// ParkingAPI is the part of DynamoDB the parking table uses.
type ParkingAPI interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
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

// Park stores p, replacing an earlier parking of the same event.
func (t *ParkingTable) Park(ctx context.Context, p Parked) error {
	item, err := attributevalue.MarshalMap(parkedItem{
		PK: p.Consumer, SK: fmt.Sprintf("%s#%019d", p.StreamID, p.Version), StreamID: p.StreamID, Version: p.Version,
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
