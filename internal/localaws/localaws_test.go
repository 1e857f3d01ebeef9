package localaws_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/template"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func TestCreateTablesFromTemplateIsIdempotent(t *testing.T) {
	client := awstest.DynamoDB(t)
	tmpl, err := template.ParseFile("../template/testdata/tables.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env, err := tmpl.LocalEnv("ct"+strconv.FormatInt(time.Now().UnixNano(), 36), localaws.Region, localaws.Account)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := tmpl.Tables(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		for _, tb := range tables {
			client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: tb.Create.TableName})
		}
	})
	for round := 0; round < 2; round++ { // the second round finds everything in place
		descs, err := localaws.CreateTables(ctx, client, tables)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(descs) != 2 || descs[0].TableStatus != types.TableStatusActive {
			t.Fatalf("round %d: %+v", round, descs)
		}
	}
	named := env.Refs["Named"]
	d, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(named)})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Table.GlobalSecondaryIndexes) != 1 || len(d.Table.LocalSecondaryIndexes) != 1 ||
		d.Table.StreamSpecification == nil || d.Table.StreamSpecification.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Fatalf("table %s: GSIs %+v, LSIs %+v, stream %+v", named, d.Table.GlobalSecondaryIndexes, d.Table.LocalSecondaryIndexes, d.Table.StreamSpecification)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(named)})
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TimeToLiveDescription == nil || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != "expiresAt" ||
		ttl.TimeToLiveDescription.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Fatalf("TTL of %s = %+v", named, ttl.TimeToLiveDescription)
	}
}
