package runner

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/eventfold/eventfold/internal/awscall"
	"github.com/eventfold/eventfold/internal/ddbstream"
	"github.com/eventfold/eventfold/internal/localaws"
)

// process delivers one batch, retrying, bisecting and discarding per the mapping, and returns
// how many records of it are done (processed or discarded); fewer only when ctx ends.
//
// A failed invocation counts as an attempt. With ReportBatchItemFailures, the records before the
// lowest reported one are done and the rest is retried, counting the attempt as a failure of the
// whole batch would. With BisectBatchOnFunctionError, a failed batch of more than one record is
// split in two and each half processed on its own, with its own attempts; the split itself does
// not count against MaximumRetryAttempts.
func (r *Runner) process(ctx context.Context, m mapping, shardID string, batch []types.Record) int {
	done, attempts := 0, 0
	for ctx.Err() == nil {
		rest := batch[done:]
		failedAt, o, fnErr := r.deliver(ctx, m, rest)
		if o == outcomeOK {
			return len(batch)
		}
		if ctx.Err() != nil {
			return done // shutting down: the invocation was cut short, not failed
		}
		attempts++
		switch {
		case failedAt > 0:
			done += failedAt
			rest = batch[done:]
		case m.bisect && len(rest) > 1:
			half := len(rest) / 2
			if n := r.process(ctx, m, shardID, rest[:half]); n < half {
				return done + n
			}
			return done + half + r.process(ctx, m, shardID, rest[half:])
		}
		expired := m.maxAge > 0 && time.Since(aws.ToTime(rest[0].Dynamodb.ApproximateCreationDateTime)) > m.maxAge
		if (m.maxRetries >= 0 && attempts > m.maxRetries) || expired {
			r.discard(ctx, m, shardID, rest, attempts, o, fnErr)
			return len(batch)
		}
		sleep(ctx, r.retryDelay(attempts))
	}
	return done
}

func (r *Runner) retryDelay(attempt int) time.Duration {
	d := r.cfg.RetryDelay << min(attempt-1, 5)
	return min(d, 30*time.Second)
}

// deliver invokes the function with a batch, and reports how the invocation ended: outcomeOK
// for success, or with ReportBatchItemFailures outcomePartial and the index of the lowest failed
// record. fnErr says why a batch failed from its first record on.
func (r *Runner) deliver(ctx context.Context, m mapping, batch []types.Record) (retryFrom int, o outcome, fnErr error) {
	records := make([]json.RawMessage, len(batch))
	seqs := make([]string, len(batch))
	for i, rec := range batch {
		records[i] = ddbstream.LambdaJSON(rec, m.streamARN)
		seqs[i] = aws.ToString(rec.Dynamodb.SequenceNumber)
	}
	payload, _ := json.Marshal(map[string]any{"Records": records})
	started := time.Now()
	out, err := r.functions[m.function].invoke(ctx, newRequestID(), payload)
	o = outcomeOf(err)
	switch {
	case err != nil:
		fnErr = err
	case m.reportFailures:
		idx, malformed := batchItemFailures(out, seqs)
		switch {
		case malformed:
			o, fnErr = outcomeMalformed, errors.New("malformed batchItemFailures response")
		case idx >= 0:
			o = outcomePartial
			retryFrom = idx
			if idx == 0 {
				fnErr = errors.New("the first record of the batch failed")
			}
		}
	}
	r.observe(Invocation{Function: m.function, Trigger: "dynamodb-stream", Event: m.event, Sequences: seqs, Outcome: string(o), Payload: payload, At: started})
	r.cfg.Log.Info("invoke", "function", m.function, "trigger", "dynamodb-stream", "event", m.event,
		"records", len(batch), "ms", time.Since(started).Milliseconds(), "outcome", string(o))
	return retryFrom, o, fnErr
}

// batchItemFailures reads a ReportBatchItemFailures response: the index in seqs of the lowest
// reported record (-1 for none), or malformed when the response is not one (an unknown or empty
// itemIdentifier makes Lambda retry the whole batch).
func batchItemFailures(out []byte, seqs []string) (int, bool) {
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier *string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	trimmed := string(out)
	if trimmed == "" || trimmed == "null" || trimmed == "{}" {
		return -1, false
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return -1, true
	}
	index := map[string]int{}
	for i, s := range seqs {
		index[s] = i
	}
	lowest := -1
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == nil {
			return -1, true
		}
		i, ok := index[*f.ItemIdentifier]
		if !ok {
			return -1, true
		}
		if lowest < 0 || i < lowest {
			lowest = i
		}
	}
	return lowest, false
}

// discard gives up on a batch and tells its OnFailure destination, as Lambda does: it records
// the failure record (see Failures) and, when the destination is a queue of the template on
// moto's server, sends it there as the message's JSON body, so that what reads an OnFailure queue
// in AWS reads it locally too.
func (r *Runner) discard(ctx context.Context, m mapping, shardID string, batch []types.Record, attempts int, o outcome, fnErr error) {
	var f FailureRecord
	f.RequestContext.RequestID = newRequestID()
	f.RequestContext.FunctionARN = r.functions[m.function].arn
	f.RequestContext.Condition = "RetryAttemptsExhausted"
	if m.maxAge > 0 && time.Since(aws.ToTime(batch[0].Dynamodb.ApproximateCreationDateTime)) > m.maxAge {
		f.RequestContext.Condition = "RecordAgeExceeded"
	}
	f.RequestContext.ApproximateInvokeCount = attempts
	f.ResponseContext.StatusCode = 200
	f.ResponseContext.ExecutedVersion = "$LATEST"
	if o != outcomeOK {
		f.ResponseContext.FunctionError = "Unhandled"
	}
	f.Version = "1.0"
	f.Timestamp = time.Now().UTC().Format(time.RFC3339Nano)
	info := &f.DDBStreamBatchInfo
	info.ShardID, info.StreamARN, info.BatchSize = shardID, m.streamARN, len(batch)
	info.StartSequenceNumber = aws.ToString(batch[0].Dynamodb.SequenceNumber)
	info.EndSequenceNumber = aws.ToString(batch[len(batch)-1].Dynamodb.SequenceNumber)
	info.ApproximateArrivalOfFirstRecord = aws.ToTime(batch[0].Dynamodb.ApproximateCreationDateTime).UTC().Format(time.RFC3339)
	info.ApproximateArrivalOfLastRecord = aws.ToTime(batch[len(batch)-1].Dynamodb.ApproximateCreationDateTime).UTC().Format(time.RFC3339)
	dest := m.onFailure
	if dest == "" {
		dest = "(none)"
	}
	r.sendFailure(dest, f)
	sent := false
	if url, ok := r.queues[r.env.Attrs[m.onFailure+".Arn"]]; ok && m.onFailure != "" {
		body, _ := json.Marshal(f)
		r.recordCall(m.function, "lambda", awscall.Call{Action: "sqs:SendMessage", Resource: r.env.Attrs[m.onFailure+".Arn"]})
		_, err := localaws.SQS(r.cfg.KMSEndpoint).SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(body))})
		if err != nil && ctx.Err() == nil {
			r.cfg.Log.Warn("send to the OnFailure queue", "function", m.function, "event", m.event, "destination", dest, "error", err.Error())
		}
		sent = err == nil
	}
	errText := ""
	if fnErr != nil {
		errText = fnErr.Error()
	}
	r.cfg.Log.Warn("discarded batch", "function", m.function, "event", m.event, "destination", dest, "sent", sent,
		"records", len(batch), "first", info.StartSequenceNumber, "attempts", attempts, "error", errText)
}
