// Package localaws connects eventfold to the local AWS stack (AWS's DynamoDB Local and moto's
// server, started by localstack/stack.sh; moto emulates KMS, EventBridge Scheduler, SQS and
// CloudFormation on one port) and creates on it the resources template.yaml declares. Nothing here is used in AWS.
package localaws

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/template"
)

// Environment variables that name the local endpoints; localstack/stack.sh sets them.
const (
	EnvDynamoDBEndpoint = "EVENTFOLD_DYNAMODB_ENDPOINT"
	EnvKMSEndpoint      = "EVENTFOLD_KMS_ENDPOINT"
	// EnvCloudFormationEndpoint names a CloudFormation emulator (moto's server serves one on
	// EnvKMSEndpoint's port) that holds the stacks cmd/eventfold's -stack names. stack.sh does not
	// set it: unset, the commands name a local deployment's resources as the template does.
	EnvCloudFormationEndpoint = "EVENTFOLD_CLOUDFORMATION_ENDPOINT"
)

// Region and Account are what the local stack pretends to be.
const (
	Region  = "us-east-1"
	Account = "000000000000"
)

// Config returns an AWS config for the local stack: fixed region and dummy static credentials,
// so that nothing reads ~/.aws or reaches the real AWS.
func Config() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
}

// DynamoDB returns a client for DynamoDB Local at endpoint (e.g. http://127.0.0.1:8000).
// Response checksum validation is off: DynamoDB Local's CRC32 headers do not always match.
func DynamoDB(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	opts := append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.DisableValidateResponseChecksum = true
	}}, optFns...)
	return dynamodb.NewFromConfig(Config(), opts...)
}

// TableAPI is the part of the DynamoDB API CreateTables uses.
type TableAPI interface {
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(context.Context, *dynamodb.DescribeTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(context.Context, *dynamodb.UpdateTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// CreateTables creates the tables (keys, indexes, stream, TTL) and waits until each is active.
// It is idempotent: a table that already exists is left as it is, and its TTL setting applied
// when missing. It returns the tables' descriptions, in the order given.
func CreateTables(ctx context.Context, api TableAPI, tables []template.Table) ([]types.TableDescription, error) {
	out := make([]types.TableDescription, 0, len(tables))
	for _, t := range tables {
		name := aws.ToString(t.Create.TableName)
		_, err := api.CreateTable(ctx, t.Create)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return nil, fmt.Errorf("create table %s (%s): %w", name, t.LogicalID, err)
		}
		desc, err := dynamodb.NewTableExistsWaiter(api).WaitForOutput(ctx,
			&dynamodb.DescribeTableInput{TableName: t.Create.TableName}, time.Minute,
			func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay, o.MaxDelay = 50*time.Millisecond, time.Second })
		if err != nil {
			return nil, fmt.Errorf("wait for table %s: %w", name, err)
		}
		if t.TTL != nil {
			if err := enableTTL(ctx, api, name, t.TTL); err != nil {
				return nil, err
			}
		}
		out = append(out, *desc.Table)
	}
	return out, nil
}

func enableTTL(ctx context.Context, api TableAPI, table string, spec *types.TimeToLiveSpecification) error {
	cur, err := api.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("describe TTL of %s: %w", table, err)
	}
	if d := cur.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == aws.ToString(spec.AttributeName) &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(table), TimeToLiveSpecification: spec})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", table, err)
	}
	return nil
}
