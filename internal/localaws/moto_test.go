package localaws_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/template"
)

const motoTemplate = `
Resources:
  Group:
    Type: AWS::Scheduler::ScheduleGroup
  Named:
    Type: AWS::Scheduler::ScheduleGroup
    Properties:
      Name: !Sub "${AWS::StackName}-named"
  Queue:
    Type: AWS::SQS::Queue
`

// TestCreateScheduleGroupsKeepsWhatExists: a second run (make run again on the same moto) finds
// the groups in place, and their schedules with them; moto's CreateScheduleGroup would drop them.
func TestCreateScheduleGroupsKeepsWhatExists(t *testing.T) {
	tmpl, err := template.Parse(strings.NewReader(motoTemplate))
	if err != nil {
		t.Fatal(err)
	}
	stack := "sg" + strconv.FormatInt(time.Now().UnixNano(), 36)
	api := localaws.Scheduler(awstest.KMSEndpoint(t))
	ctx := context.Background()
	var env template.Env
	for round := 0; round < 2; round++ {
		env, err = tmpl.LocalEnv(stack, localaws.Region, localaws.Account)
		if err != nil {
			t.Fatal(err)
		}
		names, err := localaws.CreateScheduleGroups(ctx, api, tmpl, env)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if strings.Join(names, " ") != stack+"-Group "+stack+"-named" || env.Refs["Named"] != stack+"-named" ||
			!strings.HasSuffix(env.Attrs["Group.Arn"], ":schedule-group/"+stack+"-Group") {
			t.Fatalf("round %d: groups %v, refs %v, attrs %v", round, names, env.Refs, env.Attrs)
		}
		if round == 0 {
			_, err := api.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String("kept"), GroupName: aws.String(names[0]),
				ScheduleExpression: aws.String("at(2030-01-01T00:00:00)"), FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
				Target: &types.Target{Arn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:f"), RoleArn: aws.String("arn:aws:iam::000000000000:role/r")}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := api.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("kept"), GroupName: aws.String(env.Refs["Group"])}); err != nil {
		t.Fatalf("the schedule of the group did not survive the second run: %v", err)
	}
	urls, err := localaws.CreateQueues(ctx, localaws.SQS(awstest.KMSEndpoint(t)), tmpl, env)
	if err != nil {
		t.Fatal(err)
	}
	arn := env.Attrs["Queue.Arn"]
	if !strings.HasPrefix(arn, "arn:aws:sqs:") || !strings.HasSuffix(arn, ":"+stack+"-Queue") || urls[arn] != env.Refs["Queue"] || env.Attrs["Queue.QueueName"] != stack+"-Queue" {
		t.Fatalf("queue: urls %v, Ref %q, attrs %v", urls, env.Refs["Queue"], env.Attrs)
	}
}
