package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// mapping is a DynamoDB event source mapping: a function's `Type: DynamoDB` event, with
// Lambda's defaults.
type mapping struct {
	function         string
	event            string
	streamARN        string
	startingPosition types.ShardIteratorType
	batchSize        int
	window           time.Duration
	maxRetries       int           // -1: until the record expires
	maxAge           time.Duration // 0: until the record expires
	bisect           bool
	reportFailures   bool
	filters          []map[string]any
	onFailure        string // the destination's logical ID, "" for none
}

func (r *Runner) addMappings(s functionSpec) error {
	for _, e := range r.tmpl.Events(s.id, "DynamoDB") {
		name, raw := e.Name, e.Properties
		p, err := r.env.Resolve(raw)
		if err != nil {
			return fmt.Errorf("%s event %s: %w", s.id, name, err)
		}
		props := p.(map[string]any)
		m := mapping{function: s.id, event: name, startingPosition: types.ShardIteratorTypeLatest, batchSize: 100, maxRetries: -1}
		m.streamARN, _ = props["Stream"].(string)
		if m.streamARN == "" {
			return fmt.Errorf("%s event %s: no Stream", s.id, name)
		}
		if sp, _ := props["StartingPosition"].(string); sp == "TRIM_HORIZON" {
			m.startingPosition = types.ShardIteratorTypeTrimHorizon
		}
		intProp := func(key string, def int) int {
			if v, ok := props[key]; ok {
				if n, err := strconv.Atoi(fmt.Sprint(v)); err == nil {
					return n
				}
			}
			return def
		}
		m.batchSize = min(max(intProp("BatchSize", 100), 1), 10000)
		m.window = time.Duration(intProp("MaximumBatchingWindowInSeconds", 0)) * time.Second
		m.maxRetries = intProp("MaximumRetryAttempts", -1)
		if a := intProp("MaximumRecordAgeInSeconds", -1); a > 0 {
			m.maxAge = time.Duration(a) * time.Second
		}
		m.bisect = fmt.Sprint(props["BisectBatchOnFunctionError"]) == "true"
		if types, ok := props["FunctionResponseTypes"].([]any); ok {
			for _, t := range types {
				m.reportFailures = m.reportFailures || t == "ReportBatchItemFailures"
			}
		}
		if fc, ok := props["FilterCriteria"].(map[string]any); ok {
			fs, _ := fc["Filters"].([]any)
			for _, f := range fs {
				pattern, _ := f.(map[string]any)["Pattern"].(string)
				var pm map[string]any
				if err := json.Unmarshal([]byte(pattern), &pm); err != nil {
					return fmt.Errorf("%s event %s: filter pattern is not a JSON object: %w", s.id, name, err)
				}
				m.filters = append(m.filters, pm)
			}
		}
		if dc, ok := raw["DestinationConfig"].(map[string]any); ok {
			if of, ok := dc["OnFailure"].(map[string]any); ok {
				m.onFailure = destinationName(of["Destination"])
			}
		}
		if fmt.Sprint(props["Enabled"]) == "false" {
			continue
		}
		r.mappings = append(r.mappings, m)
	}
	return nil
}

// destinationName names an OnFailure destination by the logical ID it refers to.
func destinationName(v any) string {
	switch d := v.(type) {
	case string:
		return d
	case map[string]any:
		if ref, ok := d["Ref"].(string); ok {
			return ref
		}
		if ga, ok := d["Fn::GetAtt"].([]any); ok && len(ga) > 0 {
			return fmt.Sprint(ga[0])
		}
	}
	return fmt.Sprint(v)
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

// Failures returns what the OnFailure destination with the given logical ID has received.
func (r *Runner) Failures(destination string) []FailureRecord {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return append([]FailureRecord(nil), r.failures[destination]...)
}

// Invocation is one invocation made by an event source mapping, for observers.
type Invocation struct {
	Function  string
	Event     string
	Sequences []string // the batch's sequence numbers, in order
	Outcome   string   // ok, partial, error, timeout, crashed, malformed
	Payload   json.RawMessage
	At        time.Time // when the invocation started
}

// maxHistory bounds the invocations the runner remembers.
const maxHistory = 1000

// Invocations returns the stream invocations made so far, in order.
func (r *Runner) Invocations() []Invocation {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return append([]Invocation(nil), r.invocations...)
}

// streamAPI is the part of DynamoDB Streams the pollers use.
type streamAPI interface {
	DescribeStream(context.Context, *dynamodbstreams.DescribeStreamInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(context.Context, *dynamodbstreams.GetShardIteratorInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(context.Context, *dynamodbstreams.GetRecordsInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// pollInterval is how often Lambda polls a shard: about four times a second.
const pollInterval = 250 * time.Millisecond

// poll runs one mapping until ctx ends: it finds the stream's shards, and processes each once its
// parent is done, in order, one batch at a time.
func (r *Runner) poll(ctx context.Context, api streamAPI, m mapping) {
	var (
		mu      sync.Mutex
		done    = map[string]bool{} // shards read to their end
		started = map[string]bool{}
		first   = true
	)
	for ctx.Err() == nil {
		shards, err := describe(ctx, api, m.streamARN)
		if err != nil {
			if ctx.Err() == nil {
				r.cfg.Log.Warn("describe stream", "function", m.function, "error", err.Error())
			}
			sleep(ctx, time.Second)
			continue
		}
		known := map[string]bool{}
		for _, s := range shards {
			known[aws.ToString(s.ShardId)] = true
		}
		for _, s := range shards {
			id := aws.ToString(s.ShardId)
			parent := aws.ToString(s.ParentShardId)
			closed := s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil
			pos := types.ShardIteratorTypeTrimHorizon
			mu.Lock()
			ready := !started[id]
			if ready && first && m.startingPosition == types.ShardIteratorTypeLatest {
				// LATEST: what is open at the start is read from its end; closed shards hold
				// only records from before the mapping, and are skipped.
				if closed {
					started[id], done[id], ready = true, true, false
				}
				pos = types.ShardIteratorTypeLatest
			} else if ready {
				// TRIM_HORIZON, and every shard that appears later: from its beginning, once
				// its parent is read to its end.
				ready = parent == "" || done[parent] || !known[parent]
			}
			if ready {
				started[id] = true
			}
			mu.Unlock()
			if !ready {
				continue
			}
			r.pollers.Add(1)
			go func() {
				defer r.pollers.Done()
				if r.shard(ctx, api, m, id, pos) {
					mu.Lock()
					done[id] = true
					mu.Unlock()
				}
			}()
		}
		first = false
		sleep(ctx, 2*time.Second)
	}
}

func describe(ctx context.Context, api streamAPI, arn string) ([]types.Shard, error) {
	var shards []types.Shard
	in := &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)}
	for {
		out, err := api.DescribeStream(ctx, in)
		if err != nil {
			return nil, err
		}
		shards = append(shards, out.StreamDescription.Shards...)
		if out.StreamDescription.LastEvaluatedShardId == nil {
			return shards, nil
		}
		in.ExclusiveStartShardId = out.StreamDescription.LastEvaluatedShardId
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// shard processes one shard from pos, and reports whether it read it to its end (false: ctx
// ended first).
func (r *Runner) shard(ctx context.Context, api streamAPI, m mapping, shardID string, pos types.ShardIteratorType) bool {
	var (
		iter        *string
		lastRead    string         // the last record read from the shard, filtered or not
		pending     []types.Record // read, not yet processed, in order
		windowStart time.Time
	)
	// iterator (re)acquires a shard iterator: at pos first, after the last record read when an
	// iterator expired or DynamoDB Local dropped it.
	iterator := func() bool {
		in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(m.streamARN), ShardId: aws.String(shardID), ShardIteratorType: pos}
		if lastRead != "" {
			in.ShardIteratorType, in.SequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(lastRead)
		}
		out, err := api.GetShardIterator(ctx, in)
		if err != nil {
			if ctx.Err() == nil {
				r.cfg.Log.Warn("shard iterator", "function", m.function, "shard", shardID, "error", err.Error())
			}
			return false
		}
		iter = out.ShardIterator
		return true
	}
	for !iterator() {
		if ctx.Err() != nil {
			return false
		}
		sleep(ctx, time.Second) // a passing fault: try again, never give the shard up
	}
	open := true // the shard has more records, or may get them
	for ctx.Err() == nil {
		if open && len(pending) < m.batchSize {
			out, err := api.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1000)})
			var expired *types.ExpiredIteratorException
			var trimmed *types.TrimmedDataAccessException
			switch {
			case errors.As(err, &expired), errors.As(err, &trimmed):
				if !iterator() {
					sleep(ctx, time.Second)
				} else {
					sleep(ctx, pollInterval)
				}
				continue
			case err != nil:
				if ctx.Err() == nil {
					r.cfg.Log.Warn("get records", "function", m.function, "shard", shardID, "error", err.Error())
				}
				sleep(ctx, time.Second)
				continue
			}
			iter = out.NextShardIterator
			open = iter != nil
			for _, rec := range out.Records {
				lastRead = aws.ToString(rec.Dynamodb.SequenceNumber)
				if r.matches(m, rec) {
					if len(pending) == 0 {
						windowStart = time.Now()
					}
					pending = append(pending, rec)
				}
			}
		}
		full := len(pending) >= m.batchSize
		due := len(pending) > 0 && (m.window == 0 || time.Since(windowStart) >= m.window || !open)
		if full || due {
			n := min(len(pending), m.batchSize)
			processed := r.process(ctx, m, shardID, pending[:n])
			pending = pending[processed:]
			if len(pending) > 0 {
				windowStart = time.Now().Add(-m.window) // the rest is due at once
			}
			continue
		}
		if !open && len(pending) == 0 {
			return true // the shard is closed and fully processed
		}
		sleep(ctx, pollInterval)
	}
	return false
}

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
		ok, failedAt, outcome, fnErr := r.deliver(ctx, m, rest)
		if ok {
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
			r.discard(m, shardID, rest, attempts, outcome, fnErr)
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

// deliver invokes the function with a batch. It reports success, or with
// ReportBatchItemFailures the index of the lowest failed record when that is not the first.
func (r *Runner) deliver(ctx context.Context, m mapping, batch []types.Record) (ok bool, retryFrom int, outcome string, fnErr error) {
	records := make([]json.RawMessage, len(batch))
	seqs := make([]string, len(batch))
	for i, rec := range batch {
		records[i] = recordJSON(rec, m.streamARN)
		seqs[i] = aws.ToString(rec.Dynamodb.SequenceNumber)
	}
	payload, _ := json.Marshal(map[string]any{"Records": records})
	started := time.Now()
	out, err := r.functions[m.function].invoke(ctx, newRequestID(), payload)
	outcome = "ok"
	switch {
	case err != nil:
		outcome = streamOutcome(err)
		fnErr = err
	case m.reportFailures:
		idx, malformed := batchItemFailures(out, seqs)
		switch {
		case malformed:
			outcome, fnErr = "malformed", errors.New("malformed batchItemFailures response")
		case idx >= 0:
			outcome = "partial"
			retryFrom = idx
			if idx == 0 {
				fnErr = errors.New("the first record of the batch failed")
			}
		}
	}
	r.failMu.Lock()
	r.invocations = append(r.invocations, Invocation{Function: m.function, Event: m.event, Sequences: seqs, Outcome: outcome, Payload: payload, At: started})
	if n := len(r.invocations); n > maxHistory {
		r.invocations = append([]Invocation(nil), r.invocations[n-maxHistory:]...)
	}
	r.failMu.Unlock()
	r.cfg.Log.Info("invoke", "function", m.function, "trigger", "dynamodb-stream", "event", m.event,
		"records", len(batch), "ms", time.Since(started).Milliseconds(), "outcome", outcome)
	return outcome == "ok", retryFrom, outcome, fnErr
}

func streamOutcome(err error) string {
	switch {
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrCrashed):
		return "crashed"
	}
	return "error"
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

// discard gives up on a batch and tells its OnFailure destination, as Lambda does.
func (r *Runner) discard(m mapping, shardID string, batch []types.Record, attempts int, outcome string, fnErr error) {
	var f FailureRecord
	f.RequestContext.RequestID = newRequestID()
	f.RequestContext.FunctionARN = "arn:aws:lambda:us-east-1:000000000000:function:" + m.function
	f.RequestContext.Condition = "RetryAttemptsExhausted"
	if m.maxAge > 0 && time.Since(aws.ToTime(batch[0].Dynamodb.ApproximateCreationDateTime)) > m.maxAge {
		f.RequestContext.Condition = "RecordAgeExceeded"
	}
	f.RequestContext.ApproximateInvokeCount = attempts
	f.ResponseContext.StatusCode = 200
	f.ResponseContext.ExecutedVersion = "$LATEST"
	if outcome != "ok" {
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
	r.failMu.Lock()
	if r.failures == nil {
		r.failures = map[string][]FailureRecord{}
	}
	dest := m.onFailure
	if dest == "" {
		dest = "(none)"
	}
	r.failures[dest] = append(r.failures[dest], f)
	r.failMu.Unlock()
	errText := ""
	if fnErr != nil {
		errText = fnErr.Error()
	}
	r.cfg.Log.Warn("discarded batch", "function", m.function, "event", m.event, "destination", dest,
		"records", len(batch), "first", info.StartSequenceNumber, "attempts", attempts, "error", errText)
}

// recordJSON renders a stream record as Lambda delivers it (see aws-lambda-go's
// events.DynamoDBEventRecord).
func recordJSON(rec types.Record, streamARN string) json.RawMessage {
	d := rec.Dynamodb
	change := map[string]any{
		"ApproximateCreationDateTime": aws.ToTime(d.ApproximateCreationDateTime).Unix(),
		"SequenceNumber":              aws.ToString(d.SequenceNumber),
		"SizeBytes":                   aws.ToInt64(d.SizeBytes),
		"StreamViewType":              string(d.StreamViewType),
	}
	if d.Keys != nil {
		change["Keys"] = imageJSON(d.Keys)
	}
	if d.NewImage != nil {
		change["NewImage"] = imageJSON(d.NewImage)
	}
	if d.OldImage != nil {
		change["OldImage"] = imageJSON(d.OldImage)
	}
	out := map[string]any{
		"eventID":        aws.ToString(rec.EventID),
		"eventName":      string(rec.EventName),
		"eventVersion":   aws.ToString(rec.EventVersion),
		"eventSource":    "aws:dynamodb",
		"awsRegion":      aws.ToString(rec.AwsRegion),
		"dynamodb":       change,
		"eventSourceARN": streamARN,
	}
	if out["eventVersion"] == "" {
		out["eventVersion"] = "1.1"
	}
	if rec.UserIdentity != nil {
		out["userIdentity"] = map[string]string{"type": aws.ToString(rec.UserIdentity.Type), "principalId": aws.ToString(rec.UserIdentity.PrincipalId)}
	}
	b, _ := json.Marshal(out)
	return b
}

func imageJSON(img map[string]types.AttributeValue) map[string]any {
	out := make(map[string]any, len(img))
	for k, v := range img {
		out[k] = avJSON(v)
	}
	return out
}

// avJSON is an attribute value in DynamoDB's JSON form ({"S": "x"}, {"N": "1"}, ...); []byte
// values marshal as base64, as DynamoDB's JSON has them.
func avJSON(v types.AttributeValue) map[string]any {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return map[string]any{"S": v.Value}
	case *types.AttributeValueMemberN:
		return map[string]any{"N": v.Value}
	case *types.AttributeValueMemberB:
		return map[string]any{"B": v.Value}
	case *types.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": v.Value}
	case *types.AttributeValueMemberNULL:
		return map[string]any{"NULL": v.Value}
	case *types.AttributeValueMemberSS:
		return map[string]any{"SS": v.Value}
	case *types.AttributeValueMemberNS:
		return map[string]any{"NS": v.Value}
	case *types.AttributeValueMemberBS:
		return map[string]any{"BS": v.Value}
	case *types.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			l[i] = avJSON(e)
		}
		return map[string]any{"L": l}
	case *types.AttributeValueMemberM:
		return map[string]any{"M": imageJSON(v.Value)}
	}
	return map[string]any{"NULL": true}
}

// matches applies the mapping's filters to a record: no filters, or any one matching.
func (r *Runner) matches(m mapping, rec types.Record) bool {
	if len(m.filters) == 0 {
		return true
	}
	var doc map[string]any
	json.Unmarshal(recordJSON(rec, m.streamARN), &doc)
	for _, f := range m.filters {
		if matchPattern(f, doc) {
			return true
		}
	}
	return false
}
