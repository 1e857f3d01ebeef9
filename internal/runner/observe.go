package runner

import (
	"encoding/json"
	"errors"
	"time"
)

// outcome is how an invocation ended, in the runner's log and in Invocation.Outcome.
type outcome string

const (
	outcomeOK      outcome = "ok"
	outcomeError   outcome = "error"   // the function reported an error, or the invocation failed
	outcomeTimeout outcome = "timeout" // ErrTimeout
	outcomeCrashed outcome = "crashed" // ErrCrashed
	// Outcomes of a stream batch with ReportBatchItemFailures: some records failed, or the
	// response does not say which.
	outcomePartial   outcome = "partial"
	outcomeMalformed outcome = "malformed"
)

// outcomeOf is the outcome of an invocation that returned err.
func outcomeOf(err error) outcome {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, ErrTimeout):
		return outcomeTimeout
	case errors.Is(err, ErrCrashed):
		return outcomeCrashed
	}
	return outcomeError
}

// FailureRecord is what Lambda sends an OnFailure destination for a discarded batch of stream
// records: metadata, not the records.
type FailureRecord struct {
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionARN            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError,omitempty"`
	} `json:"responseContext"`
	Version            string `json:"version"`
	Timestamp          string `json:"timestamp"`
	DDBStreamBatchInfo struct {
		ShardID                         string `json:"shardId"`
		StartSequenceNumber             string `json:"startSequenceNumber"`
		EndSequenceNumber               string `json:"endSequenceNumber"`
		ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
		ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
		BatchSize                       int    `json:"batchSize"`
		StreamARN                       string `json:"streamArn"`
	} `json:"DDBStreamBatchInfo"`
}

// sendFailure delivers a failure record to the OnFailure destination with the given logical ID.
func (r *Runner) sendFailure(destination string, f FailureRecord) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if r.failures == nil {
		r.failures = map[string][]FailureRecord{}
	}
	r.failures[destination] = append(r.failures[destination], f)
}

// Failures returns what the OnFailure destination with the given logical ID has received.
func (r *Runner) Failures(destination string) []FailureRecord {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return append([]FailureRecord(nil), r.failures[destination]...)
}

// Invocation is one invocation made by an event source mapping or a schedule, for observers.
type Invocation struct {
	Function string
	// Trigger is "dynamodb-stream" or "schedule"; Event, the function's event of the stream
	// trigger, or the schedule's "group/name".
	Trigger   string
	Event     string
	Sequences []string // a stream batch's sequence numbers, in order
	Outcome   string   // ok, partial, error, timeout, crashed, malformed
	Payload   json.RawMessage
	At        time.Time // when the invocation started
}

// maxHistory bounds the invocations the runner remembers.
const maxHistory = 1000

// observe remembers an invocation, and forgets the oldest past maxHistory.
func (r *Runner) observe(inv Invocation) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	r.invocations = append(r.invocations, inv)
	if n := len(r.invocations); n > maxHistory {
		r.invocations = append([]Invocation(nil), r.invocations[n-maxHistory:]...)
	}
}

// Invocations returns the invocations made by stream triggers and schedules so far, in order.
func (r *Runner) Invocations() []Invocation {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return append([]Invocation(nil), r.invocations...)
}
