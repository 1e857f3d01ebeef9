package localaws

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/eventfold/eventfold/internal/template"
)

// moto's server, at EnvKMSEndpoint, serves every service moto emulates on one port; the
// clients below reach its EventBridge Scheduler and SQS. It stores schedules and never fires
// them: the local runner does.

// Resource types CreateScheduleGroups and CreateQueues read.
const (
	ScheduleGroupType = "AWS::Scheduler::ScheduleGroup"
	QueueType         = "AWS::SQS::Queue"
)

// Scheduler returns an EventBridge Scheduler client for moto's server at endpoint.
func Scheduler(endpoint string) *scheduler.Client {
	return scheduler.NewFromConfig(Config(), func(o *scheduler.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// SQS returns an SQS client for moto's server at endpoint.
func SQS(endpoint string) *sqs.Client {
	return sqs.NewFromConfig(Config(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// ScheduleGroupAPI is the part of the Scheduler API CreateScheduleGroups uses.
type ScheduleGroupAPI interface {
	CreateScheduleGroup(context.Context, *scheduler.CreateScheduleGroupInput, ...func(*scheduler.Options)) (*scheduler.CreateScheduleGroupOutput, error)
	GetScheduleGroup(context.Context, *scheduler.GetScheduleGroupInput, ...func(*scheduler.Options)) (*scheduler.GetScheduleGroupOutput, error)
}

// CreateScheduleGroups creates the template's AWS::Scheduler::ScheduleGroup resources and
// records them in env: Ref is the group's name (its Name, else "<stack>-<LogicalID>" from
// env.Refs["AWS::StackName"]), Fn::GetAtt Group.Arn its ARN. A group that exists is kept as it
// is: moto's CreateScheduleGroup would replace it and drop its schedules. It returns the groups'
// names, in logical-ID order.
func CreateScheduleGroups(ctx context.Context, api ScheduleGroupAPI, tmpl *template.Template, env template.Env) ([]string, error) {
	var names []string
	for _, id := range tmpl.OfType(ScheduleGroupType) {
		name, err := tmpl.Name(id, "Name", env)
		if err != nil {
			return nil, err
		}
		var arn string
		got, err := api.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(name)})
		var missing *schedtypes.ResourceNotFoundException
		switch {
		case err == nil:
			arn = aws.ToString(got.Arn)
		case errors.As(err, &missing):
			out, err := api.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(name)})
			if err != nil {
				return nil, fmt.Errorf("create schedule group %s (%s): %w", name, id, err)
			}
			arn = aws.ToString(out.ScheduleGroupArn)
		default:
			return nil, fmt.Errorf("get schedule group %s (%s): %w", name, id, err)
		}
		env.Refs[id] = name
		env.Attrs[id+".Arn"] = arn
		names = append(names, name)
	}
	return names, nil
}

// QueueAPI is the part of the SQS API CreateQueues uses.
type QueueAPI interface {
	CreateQueue(context.Context, *sqs.CreateQueueInput, ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// CreateQueues creates the template's AWS::SQS::Queue resources (standard queues; their
// attributes only matter in AWS) and records them in env as CloudFormation names them: Ref is
// the queue's URL, Fn::GetAtt Queue.Arn its ARN and Queue.QueueName its name (its QueueName,
// else "<stack>-<LogicalID>"). Creating a queue that exists returns it. It returns the queues'
// URLs by ARN.
func CreateQueues(ctx context.Context, api QueueAPI, tmpl *template.Template, env template.Env) (map[string]string, error) {
	urls := map[string]string{}
	for _, id := range tmpl.OfType(QueueType) {
		name, err := tmpl.Name(id, "QueueName", env)
		if err != nil {
			return nil, err
		}
		out, err := api.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("create queue %s (%s): %w", name, id, err)
		}
		attrs, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			return nil, fmt.Errorf("queue %s (%s) ARN: %w", name, id, err)
		}
		arn := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
		env.Refs[id] = aws.ToString(out.QueueUrl)
		env.Attrs[id+".Arn"] = arn
		env.Attrs[id+".QueueName"] = name
		urls[arn] = aws.ToString(out.QueueUrl)
	}
	return urls, nil
}
