// Command fn is the runner's test function: what it does depends on the request path.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// seen counts, per record, how often this instance was handed it.
var seen = map[string]int{}

// stream handles a DynamoDB stream batch. Each record's NewImage "mode" says how to treat it:
// "ok"; "fail-twice" fails the invocation the first two times; "poison" always fails it;
// "report-twice" is reported in batchItemFailures the first two times, "report-always" every time; "malformed" answers a
// malformed batchItemFailures once.
func stream(ev events.DynamoDBEvent) (any, error) {
	var failures []events.DynamoDBBatchItemFailure
	for _, rec := range ev.Records {
		seq := rec.Change.SequenceNumber
		seen[seq]++
		switch rec.Change.NewImage["mode"].String() {
		case "fail-twice":
			if seen[seq] <= 2 {
				return nil, errors.New("failing twice")
			}
		case "poison":
			return nil, errors.New("poison record")
		case "report-always":
			failures = append(failures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
		case "report-twice":
			if seen[seq] <= 2 {
				failures = append(failures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
			}
		case "malformed":
			if seen[seq] == 1 {
				return map[string]any{"batchItemFailures": []map[string]string{{"itemIdentifier": "no-such-record"}}}, nil
			}
		}
	}
	return events.DynamoDBEventResponse{BatchItemFailures: failures}, nil
}

// timer handles a schedule's input, as EventBridge Scheduler invokes a function: "fire" counts
// the firing in FIRED_TABLE under the input's id, with the input, after 600 ms; "fail" always fails; "whoami"
// says which function this is and where its scheduler is.
func timer(ctx context.Context, raw json.RawMessage, in timerInput) (any, error) {
	switch in.Mode {
	case "fire":
		// Slower than the runner's schedule polls, so that a loop that fired again what it is
		// still firing would count twice.
		time.Sleep(600 * time.Millisecond)
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, err
		}
		_, err = dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }).UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:        aws.String(os.Getenv("FIRED_TABLE")),
			Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: in.ID}},
			UpdateExpression: aws.String("ADD n :one SET got = :got"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":one": &types.AttributeValueMemberN{Value: "1"}, ":got": &types.AttributeValueMemberS{Value: string(raw)}},
		})
		return nil, err
	case "fail":
		return nil, errors.New("failing as asked")
	case "whoami":
		lc, _ := lambdacontext.FromContext(ctx)
		return map[string]string{"arn": lc.InvokedFunctionArn, "name": os.Getenv("AWS_LAMBDA_FUNCTION_NAME"),
			"scheduler": os.Getenv("AWS_ENDPOINT_URL_SCHEDULER"), "group": os.Getenv("SCHEDULE_GROUP"),
			"role": os.Getenv("SCHEDULER_ROLE_ARN"), "dlq": os.Getenv("DEADLINE_DLQ_ARN")}, nil
	}
	return nil, errors.New("unknown timer mode")
}

type timerInput struct {
	Mode string `json:"mode"`
	ID   string `json:"id"`
}

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe struct {
		Records []json.RawMessage
		Timer   *timerInput `json:"timer"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.Timer != nil {
		return timer(ctx, raw, *probe.Timer)
	}
	if json.Unmarshal(raw, &probe) == nil && probe.Records != nil {
		var ev events.DynamoDBEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		return stream(ev)
	}
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, err
	}
	fmt.Println("fn: http request", req.RouteKey) // tests count what reached the function
	switch {
	case strings.HasPrefix(req.RawPath, "/echo"):
		deadline, _ := ctx.Deadline()
		lc, _ := lambdacontext.FromContext(ctx)
		body, _ := json.Marshal(map[string]any{"event": json.RawMessage(raw), "requestId": lc.AwsRequestID, "deadlineInMs": time.Until(deadline).Milliseconds()})
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"X-Test": "yes", "Content-Type": "application/json"},
			Cookies: []string{"a=b; Path=/", "c=d"}, Body: string(body)}, nil
	case req.RawPath == "/plain":
		return map[string]string{"hello": "world"}, nil
	case req.RawPath == "/binary":
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}), IsBase64Encoded: true,
			Headers: map[string]string{"Content-Type": "application/octet-stream"}}, nil
	case req.RawPath == "/env":
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: os.Getenv("TABLE_NAME") + "|" + os.Getenv("GLOBAL_VAR") + "|" + os.Getenv("AWS_LAMBDA_FUNCTION_NAME") + "|" + os.Getenv("KEY_ARN") + "|" + os.Getenv("KEY_ALIAS")}, nil
	case req.RawPath == "/error":
		return nil, errors.New("boom")
	case req.RawPath == "/crash":
		os.Exit(3)
	case req.RawPath == "/sleep":
		time.Sleep(5 * time.Second)
		return map[string]string{"slept": "yes"}, nil
	case req.RawPath == "/pid":
		time.Sleep(50 * time.Millisecond)
		return map[string]int{"pid": os.Getpid()}, nil
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: 404, Body: "no such test path"}, nil
}

func main() { lambda.Start(handle) }
