package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
)

// smallPages scans two items a page, so that a scan of a few items spans several pages.
type smallPages struct {
	*dynamodb.Client
	pages int
}

func (s *smallPages) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	s.pages++
	in.Limit = aws.Int32(2)
	return s.Client.Scan(ctx, in, opts...)
}

func TestScanTable(t *testing.T) {
	ctx := context.Background()
	client := awstest.DynamoDB(t)
	table := awstest.MustTables(t, client).Refs["ClaimsTable"]
	var all []string
	for i := range 7 {
		pk := fmt.Sprintf("k%d", i)
		all = append(all, pk)
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk}, "odd": &types.AttributeValueMemberBOOL{Value: i%2 == 1},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	odd := expression.Name("odd").Equal(expression.Value(true))
	stop := errors.New("stop")
	tests := []struct {
		name    string
		table   string
		filter  *expression.ConditionBuilder
		stopAt  int // stop after this many items; 0: never
		want    []string
		wantErr func(error) bool
	}{
		{"every item, over pages", table, nil, 0, all, nil},
		{"filtered", table, &odd, 0, []string{"k1", "k3", "k5"}, nil},
		{"stopped by each", table, nil, 3, nil, func(err error) bool { return err == stop }},
		{"no such table", table + "-missing", nil, 0, nil, func(err error) bool {
			var nf *types.ResourceNotFoundException
			return errors.As(err, &nf) && strings.Contains(err.Error(), "scan "+table+"-missing")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &smallPages{Client: client}
			var got []string
			err := store.ScanTable(ctx, api, tt.table, tt.filter, func(it map[string]types.AttributeValue) error {
				got = append(got, it["pk"].(*types.AttributeValueMemberS).Value)
				if tt.stopAt > 0 && len(got) == tt.stopAt {
					return stop
				}
				return nil
			})
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Fatalf("ScanTable: %v, not the error wanted", err)
				}
				if tt.stopAt > 0 && len(got) != tt.stopAt {
					t.Fatalf("each got %d items after returning an error at %d", len(got), tt.stopAt)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("scanned %v, want %v", got, tt.want)
			}
			if tt.filter == nil && api.pages < 4 {
				t.Fatalf("scanned in %d pages of 2; want at least 4 for 7 items", api.pages)
			}
		})
	}
}
