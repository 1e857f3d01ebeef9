package runner

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

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
