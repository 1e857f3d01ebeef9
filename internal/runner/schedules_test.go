package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/runner"
	"github.com/eventfold/eventfold/internal/schedule"
)

// scheduleInvocations are the runner's invocations for the schedule group/name.
func scheduleInvocations(r *runner.Runner, key string) []runner.Invocation {
	var out []runner.Invocation
	for _, inv := range r.Invocations() {
		if inv.Trigger == "schedule" && inv.Event == key {
			out = append(out, inv)
		}
	}
	return out
}

func deadLetter(r *runner.Runner, name string) (runner.DeadLetter, bool) {
	for _, d := range r.DeadLetters() {
		if d.Name == name {
			return d, true
		}
	}
	return runner.DeadLetter{}, false
}

// exists says whether the schedule is still on moto's scheduler.
func exists(t *testing.T, api *scheduler.Client, group, name string) bool {
	t.Helper()
	_, err := api.GetSchedule(context.Background(), &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(group)})
	var missing *schedtypes.ResourceNotFoundException
	if errors.As(err, &missing) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func timerInput(mode, id string) []byte {
	b, _ := json.Marshal(map[string]any{"timer": map[string]string{"mode": mode, "id": id}})
	return b
}

func TestSchedulesFire(t *testing.T) {
	r, ddb := startStreams(t, "testdata/schedules.yaml")
	ctx := context.Background()
	env := r.Env()
	api := localaws.Scheduler(awstest.KMSEndpoint(t))
	group := env.Refs["Deadlines"]
	targetARN := env.Attrs["TimerFunction.Arn"]
	deadlines, err := schedule.New(api, schedule.Config{Group: group, RoleARN: env.Attrs["SchedulerRole.Arn"], DeadLetterARN: env.Attrs["DeadLetters.Arn"]})
	if err != nil {
		t.Fatal(err)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)

	t.Run("TheFunctionKnowsItsARNAndItsScheduler", func(t *testing.T) {
		out, err := r.Invoke(ctx, "TimerFunction", timerInput("whoami", ""))
		if err != nil {
			t.Fatal(err)
		}
		var who map[string]string
		json.Unmarshal(out, &who)
		wantARN := "arn:aws:lambda:" + localaws.Region + ":" + localaws.Account + ":function:" + env.Refs["AWS::StackName"] + "-timer"
		switch {
		case who["arn"] != wantARN || targetARN != wantARN || who["name"] != env.Refs["AWS::StackName"]+"-timer":
			t.Errorf("invoked function ARN %q, name %q, template's Arn %q; want %q", who["arn"], who["name"], targetARN, wantARN)
		case who["scheduler"] != awstest.KMSEndpoint(t) || who["group"] != group:
			t.Errorf("scheduler endpoint %q, group %q", who["scheduler"], who["group"])
		case who["role"] != "arn:aws:iam::"+localaws.Account+":role/"+env.Refs["AWS::StackName"]+"-SchedulerRole":
			t.Errorf("role ARN %q", who["role"])
		case who["dlq"] == "" || who["dlq"] != env.Attrs["DeadLetters.Arn"]:
			t.Errorf("dead-letter queue ARN %q, template's %q", who["dlq"], env.Attrs["DeadLetters.Arn"])
		}
	})

	// Two schedules: one due in about a second, one in an hour.
	due := schedule.Schedule{Name: "due-" + run, At: time.Now().Add(time.Second), TargetARN: targetARN, Input: timerInput("fire", "due-"+run)}
	later := schedule.Schedule{Name: "later-" + run, At: time.Now().Add(time.Hour), TargetARN: targetARN, Input: timerInput("fire", "later-"+run)}
	for _, s := range []schedule.Schedule{due, later} {
		if err := deadlines.Set(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("ADueScheduleFiresOnceWithItsInputAndIsDeleted", func(t *testing.T) {
		fired := func() map[string]ddbtypes.AttributeValue {
			out, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(env.Refs["Fired"]), ConsistentRead: aws.Bool(true),
				Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: due.Name}}})
			if err != nil {
				t.Fatal(err)
			}
			return out.Item
		}
		waitFor(t, 15*time.Second, "the due schedule to fire", func() bool { return fired() != nil })
		if time.Now().Before(due.At.Truncate(time.Second)) {
			t.Fatalf("fired before its time %v", due.At)
		}
		waitFor(t, 5*time.Second, "the fired schedule to be deleted", func() bool { return !exists(t, api, group, due.Name) })
		time.Sleep(4 * 250 * time.Millisecond) // a few more polls: nothing fires it again
		item := fired()
		if n := item["n"].(*ddbtypes.AttributeValueMemberN).Value; n != "1" {
			t.Fatalf("fired %s times", n)
		}
		if in := item["got"].(*ddbtypes.AttributeValueMemberS).Value; in != string(due.Input) {
			t.Fatalf("the function got %s, want the schedule's input %s", in, due.Input)
		}
		if invs := scheduleInvocations(r, group+"/"+due.Name); len(invs) != 1 || invs[0].Outcome != "ok" || invs[0].Function != "TimerFunction" {
			t.Fatalf("invocations %+v, want one ok", invs)
		}
	})

	t.Run("AScheduleInTheFutureDoesNotFire", func(t *testing.T) {
		if !exists(t, api, group, later.Name) {
			t.Fatal("the future schedule is gone")
		}
		if invs := scheduleInvocations(r, group+"/"+later.Name); len(invs) != 0 {
			t.Fatalf("fired ahead of time: %+v", invs)
		}
	})

	t.Run("AFailingTargetIsRetriedThenDeadLettered", func(t *testing.T) {
		name := "failing-" + run
		input := timerInput("fail", name)
		_, err := api.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
			Name: aws.String(name), GroupName: aws.String(group),
			ScheduleExpression:    aws.String(schedule.Expression(time.Now().Add(-time.Second))),
			FlexibleTimeWindow:    &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
			ActionAfterCompletion: schedtypes.ActionAfterCompletionDelete,
			Target: &schedtypes.Target{Arn: aws.String(targetARN), RoleArn: aws.String(env.Attrs["SchedulerRole.Arn"]), Input: aws.String(string(input)),
				RetryPolicy:      &schedtypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(2), MaximumEventAgeInSeconds: aws.Int32(60)},
				DeadLetterConfig: &schedtypes.DeadLetterConfig{Arn: aws.String(env.Attrs["DeadLetters.Arn"])}},
		})
		if err != nil {
			t.Fatal(err)
		}
		var dl runner.DeadLetter
		waitFor(t, 15*time.Second, "the failing schedule to be dead-lettered", func() bool {
			var ok bool
			dl, ok = deadLetter(r, name)
			return ok
		})
		if dl.Attempts != 3 || !dl.Sent || dl.Queue != env.Attrs["DeadLetters.Arn"] || dl.TargetARN != targetARN || dl.Group != group {
			t.Fatalf("dead letter %+v, want 3 attempts sent to %s", dl, env.Attrs["DeadLetters.Arn"])
		}
		invs := scheduleInvocations(r, group+"/"+name)
		if len(invs) != 3 {
			t.Fatalf("%d invocations, want 1 and 2 retries", len(invs))
		}
		for _, inv := range invs {
			if inv.Outcome != "error" || string(inv.Payload) != string(input) {
				t.Fatalf("invocation %+v", inv)
			}
		}
		waitFor(t, 5*time.Second, "the dead-lettered schedule to be deleted", func() bool { return !exists(t, api, group, name) })
		msg := receive(t, env.Refs["DeadLetters"])
		if aws.ToString(msg.Body) != string(input) || aws.ToString(msg.MessageAttributes["TARGET_ARN"].StringValue) != targetARN ||
			aws.ToString(msg.MessageAttributes["RETRY_ATTEMPTS"].StringValue) != "2" {
			t.Fatalf("dead-letter message %s %+v", aws.ToString(msg.Body), msg.MessageAttributes)
		}
	})

	t.Run("AnUnknownTargetIsDeadLetteredWithoutAnInvocation", func(t *testing.T) {
		s := schedule.Schedule{Name: "unknown-" + run, At: time.Now().Add(-time.Second), TargetARN: targetARN + "-gone", Input: timerInput("fire", "x")}
		if err := deadlines.Set(ctx, s); err != nil {
			t.Fatal(err)
		}
		var dl runner.DeadLetter
		waitFor(t, 10*time.Second, "the unknown target to be dead-lettered", func() bool {
			var ok bool
			dl, ok = deadLetter(r, s.Name)
			return ok
		})
		if dl.Attempts != 0 || !dl.Sent || dl.TargetARN != s.TargetARN {
			t.Fatalf("dead letter %+v", dl)
		}
		if invs := scheduleInvocations(r, group+"/"+s.Name); len(invs) != 0 {
			t.Fatalf("invoked %+v", invs)
		}
		waitFor(t, 5*time.Second, "the schedule to be deleted", func() bool { return !exists(t, api, group, s.Name) })
	})
}

// receive takes one message from the queue at url, waiting a few seconds at most.
func receive(t *testing.T, url string) sqstypes.Message {
	t.Helper()
	q := localaws.SQS(awstest.KMSEndpoint(t))
	out, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 5,
		MaxNumberOfMessages: 1, MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("%d messages on %s, want 1", len(out.Messages), url)
	}
	return out.Messages[0]
}

func TestCloseStopsTheScheduleLoop(t *testing.T) {
	r, _ := startStreams(t, "testdata/schedules.yaml")
	env := r.Env()
	api := localaws.Scheduler(awstest.KMSEndpoint(t))
	group := env.Refs["Deadlines"]
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	deadlines, err := schedule.New(api, schedule.Config{Group: group, RoleARN: env.Attrs["SchedulerRole.Arn"], DeadLetterARN: env.Attrs["DeadLetters.Arn"]})
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("after-close-%d", time.Now().UnixNano())
	if err := deadlines.Set(context.Background(), schedule.Schedule{Name: name, At: time.Now().Add(-time.Minute), TargetARN: env.Attrs["TimerFunction.Arn"], Input: timerInput("fire", name)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * 250 * time.Millisecond)
	if !exists(t, api, group, name) || len(r.Invocations()) != 0 || len(r.DeadLetters()) != 0 {
		t.Fatalf("a due schedule was handled after Close: exists %v, invocations %+v, dead letters %+v",
			exists(t, api, group, name), r.Invocations(), r.DeadLetters())
	}
}
