package runner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/eventfold/eventfold/internal/awscall"
	"github.com/eventfold/eventfold/internal/schedule"
)

// schedulerAPI is the part of EventBridge Scheduler (moto's, locally) the schedule loop uses.
type schedulerAPI interface {
	ListSchedules(context.Context, *scheduler.ListSchedulesInput, ...func(*scheduler.Options)) (*scheduler.ListSchedulesOutput, error)
	GetSchedule(context.Context, *scheduler.GetScheduleInput, ...func(*scheduler.Options)) (*scheduler.GetScheduleOutput, error)
	DeleteSchedule(context.Context, *scheduler.DeleteScheduleInput, ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error)
}

// queueAPI is the part of SQS the schedule loop uses to dead-letter.
type queueAPI interface {
	SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// scheduleInterval is how often the runner looks for due schedules. EventBridge Scheduler fires
// within a minute of a schedule's time; locally it is within about this interval.
const scheduleInterval = 250 * time.Millisecond

// The scheduler's retry policy when a schedule sets none, and its bounds.
const (
	defaultScheduleRetries = 185
	defaultScheduleMaxAge  = 24 * time.Hour
)

// DeadLetter is a schedule whose target the runner gave up on: after its retry policy's attempts
// or event age, or at once for a target ARN that is no function of the template.
type DeadLetter struct {
	Group, Name string
	TargetARN   string
	// Queue is the schedule's dead-letter queue ARN ("" for none); Sent, whether the message
	// reached it on moto's SQS.
	Queue    string
	Sent     bool
	Attempts int
	Error    string
}

// DeadLetters returns the schedules dead-lettered so far, in order.
func (r *Runner) DeadLetters() []DeadLetter {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return append([]DeadLetter(nil), r.deadLetters...)
}

// tracked is what the schedule loop knows of one schedule, at one version of it.
type tracked struct {
	version string // creation and modification times as listed: a new version is a new schedule
	detail  *scheduler.GetScheduleOutput
	at      time.Time
	skip    bool // not fired locally (not a one-time schedule); logged once
	fired   bool // fired, or firing, at this version
}

// fireSchedules runs until ctx ends: about four times a second it lists the schedules of the
// template's groups and fires each one-time schedule that is due, as EventBridge Scheduler does.
// Each firing runs on its own (retries back off without holding up the others); fireSchedules
// waits for them before it returns.
func (r *Runner) fireSchedules(ctx context.Context, api schedulerAPI, queues queueAPI) {
	var firing sync.WaitGroup
	defer firing.Wait()
	seen := map[string]*tracked{} // by group/name
	tick := time.NewTicker(scheduleInterval)
	defer tick.Stop()
	for {
		for _, g := range r.groups {
			r.scanGroup(ctx, api, queues, g, seen, &firing)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// scanGroup looks at every schedule of group once, and starts the firing of those due.
func (r *Runner) scanGroup(ctx context.Context, api schedulerAPI, queues queueAPI, group string, seen map[string]*tracked, firing *sync.WaitGroup) {
	listed := map[string]bool{}
	in := &scheduler.ListSchedulesInput{GroupName: aws.String(group)}
	for {
		out, err := api.ListSchedules(ctx, in)
		if err != nil {
			if ctx.Err() == nil {
				r.cfg.Log.Warn("list schedules", "group", group, "error", err.Error())
			}
			return // nothing is forgotten on a failed listing
		}
		for _, sum := range out.Schedules {
			name := aws.ToString(sum.Name)
			key := group + "/" + name
			listed[key] = true
			version := aws.ToTime(sum.CreationDate).String() + "|" + aws.ToTime(sum.LastModificationDate).String()
			t := seen[key]
			if t == nil || t.version != version {
				t = &tracked{version: version}
				seen[key] = t
			}
			if t.fired || t.skip || (sum.State != "" && sum.State != schedtypes.ScheduleStateEnabled) {
				continue
			}
			if t.detail == nil {
				d, err := api.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(group)})
				var missing *schedtypes.ResourceNotFoundException
				switch {
				case errors.As(err, &missing):
					continue // deleted since it was listed
				case err != nil:
					if ctx.Err() == nil {
						r.cfg.Log.Warn("get schedule", "schedule", key, "error", err.Error())
					}
					continue
				}
				at, err := schedule.ParseExpression(aws.ToString(d.ScheduleExpression), aws.ToString(d.ScheduleExpressionTimezone))
				if err != nil {
					t.skip = true
					r.cfg.Log.Warn("schedule not fired locally: only one-time at() schedules are", "schedule", key,
						"expression", aws.ToString(d.ScheduleExpression))
					continue
				}
				t.detail, t.at = d, at
			}
			if time.Now().Before(t.at) {
				continue
			}
			t.fired = true
			firing.Add(1)
			go func(d *scheduler.GetScheduleOutput, at time.Time) {
				defer firing.Done()
				r.fireSchedule(ctx, api, queues, group, d, at)
			}(t.detail, t.at)
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	for key := range seen {
		if strings.HasPrefix(key, group+"/") && !listed[key] {
			delete(seen, key)
		}
	}
}

// fireSchedule invokes a due schedule's target with its input, as EventBridge Scheduler invokes
// a Lambda target (asynchronously, the input as the event), retrying a failed invocation per the
// schedule's retry policy; then dead-letters it if every attempt failed, and deletes it when its
// ActionAfterCompletion is DELETE. When ctx ends first it stops and leaves the schedule as it is.
func (r *Runner) fireSchedule(ctx context.Context, api schedulerAPI, queues queueAPI, group string, d *scheduler.GetScheduleOutput, at time.Time) {
	name := aws.ToString(d.Name)
	key := group + "/" + name
	target := d.Target
	if target == nil {
		target = &schedtypes.Target{}
	}
	input := []byte(aws.ToString(target.Input))
	if len(input) == 0 {
		input = []byte("{}")
	}
	retries, maxAge := defaultScheduleRetries, defaultScheduleMaxAge
	if p := target.RetryPolicy; p != nil {
		if p.MaximumRetryAttempts != nil {
			retries = min(max(int(*p.MaximumRetryAttempts), 0), defaultScheduleRetries)
		}
		if p.MaximumEventAgeInSeconds != nil {
			maxAge = min(max(time.Duration(*p.MaximumEventAgeInSeconds)*time.Second, time.Minute), defaultScheduleMaxAge)
		}
	}
	f := r.functionByARN(aws.ToString(target.Arn))
	attempts := 0
	var lastErr error
	if f == nil {
		lastErr = fmt.Errorf("no function of the template has the ARN %q", aws.ToString(target.Arn))
	}
	role := r.roleByARN(aws.ToString(target.RoleArn))
	if role == "" {
		role = "UnknownSchedulerRole" // a call no policy of the template allows
	}
	for f != nil {
		attempts++
		r.recordCall(role, "scheduler", awscall.Call{Action: "lambda:InvokeFunction", Resource: f.arn})
		started := time.Now()
		_, err := f.invoke(ctx, newRequestID(), input)
		if ctx.Err() != nil {
			return // shutting down: the invocation was cut short, not failed
		}
		o := outcomeOf(err)
		r.observe(Invocation{Function: f.name, Trigger: "schedule", Event: key, Outcome: string(o), Payload: input, At: started})
		r.cfg.Log.Info("invoke", "function", f.name, "trigger", "schedule", "schedule", key, "attempt", attempts,
			"ms", time.Since(started).Milliseconds(), "outcome", string(o))
		if err == nil {
			lastErr = nil
			break
		}
		lastErr = err
		if attempts > retries || time.Since(at) > maxAge {
			break
		}
		sleep(ctx, r.scheduleRetryDelay(attempts))
		if ctx.Err() != nil {
			return
		}
	}
	if lastErr != nil {
		if target.DeadLetterConfig != nil {
			r.recordCall(role, "scheduler", awscall.Call{Action: "sqs:SendMessage", Resource: aws.ToString(target.DeadLetterConfig.Arn)})
		}
		r.deadLetter(ctx, queues, group, d, target, input, attempts, lastErr)
	}
	if d.ActionAfterCompletion != schedtypes.ActionAfterCompletionDelete {
		return
	}
	_, err := api.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: aws.String(group)})
	var missing *schedtypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &missing) && ctx.Err() == nil {
		r.cfg.Log.Warn("delete fired schedule", "schedule", key, "error", err.Error())
	}
}

// scheduleRetryDelay is the wait before retry number attempt of a schedule's target: RetryDelay,
// doubling, at most 5 s.
func (r *Runner) scheduleRetryDelay(attempt int) time.Duration {
	return min(r.cfg.RetryDelay<<min(attempt-1, 5), 5*time.Second)
}

// functionByARN is the template's function with that ARN, or nil.
func (r *Runner) functionByARN(arn string) *function {
	for _, f := range r.functions {
		if f.arn == arn {
			return f
		}
	}
	return nil
}

// deadLetter records a schedule given up on, sends its input to its dead-letter queue on moto's
// SQS with the attributes EventBridge Scheduler sets (when the template declares that queue), and
// logs it. The input is never logged.
func (r *Runner) deadLetter(ctx context.Context, queues queueAPI, group string, d *scheduler.GetScheduleOutput, target *schedtypes.Target, input []byte, attempts int, cause error) {
	dl := DeadLetter{Group: group, Name: aws.ToString(d.Name), TargetARN: aws.ToString(target.Arn), Attempts: attempts, Error: cause.Error()}
	if target.DeadLetterConfig != nil {
		dl.Queue = aws.ToString(target.DeadLetterConfig.Arn)
	}
	if url, ok := r.queues[dl.Queue]; ok && queues != nil {
		code := "TargetInvocationFailed"
		if attempts == 0 {
			code = "ResourceNotFound"
		}
		attr := func(v string) sqstypes.MessageAttributeValue {
			return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
		_, err := queues.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(input)),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				"ERROR_CODE":     attr(code),
				"ERROR_MESSAGE":  attr(dl.Error),
				"EXECUTION_ID":   attr(newRequestID()),
				"GROUP":          attr(group),
				"RETRY_ATTEMPTS": attr(strconv.Itoa(max(attempts-1, 0))),
				"SCHEDULE_ARN":   attr(aws.ToString(d.Arn)),
				"TARGET_ARN":     attr(dl.TargetARN),
			}})
		if err != nil && ctx.Err() == nil {
			r.cfg.Log.Warn("send to the dead-letter queue", "schedule", group+"/"+dl.Name, "queue", dl.Queue, "error", err.Error())
		}
		dl.Sent = err == nil
	} else if dl.Queue != "" {
		r.cfg.Log.Warn("dead-letter queue is not a queue of the template", "schedule", group+"/"+dl.Name, "queue", dl.Queue)
	}
	r.failMu.Lock()
	r.deadLetters = append(r.deadLetters, dl)
	if n := len(r.deadLetters); n > maxHistory {
		r.deadLetters = append([]DeadLetter(nil), r.deadLetters[n-maxHistory:]...)
	}
	r.failMu.Unlock()
	destination := dl.Queue
	if destination == "" {
		destination = "(none)"
	}
	r.cfg.Log.Warn("dead-lettered schedule", "schedule", group+"/"+dl.Name, "target", dl.TargetARN, "destination", destination,
		"attempts", attempts, "sent", dl.Sent, "error", dl.Error)
}
