package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Scanner is the part of DynamoDB [ScanTable] uses.
type Scanner interface {
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// ScanTable reads every item of table, page by page with strongly consistent reads, and passes
// each to each: the whole-table read of the operator tools (the erasure audit, the restore).
// With a filter, only the items it matches are passed (DynamoDB still reads every item). It
// stops at the first error each returns and returns that error as it is; a page it cannot read
// is an error naming the table.
func ScanTable(ctx context.Context, api Scanner, table string, filter *expression.ConditionBuilder, each func(map[string]types.AttributeValue) error) error {
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)}
	if filter != nil {
		expr, err := expression.NewBuilder().WithFilter(*filter).Build()
		if err != nil {
			return err
		}
		in.FilterExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues = expr.Filter(), expr.Names(), expr.Values()
	}
	for p := dynamodb.NewScanPaginator(api, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("scan %s: %w", table, err)
		}
		for _, it := range page.Items {
			if err := each(it); err != nil {
				return err
			}
		}
	}
	return nil
}
