package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis defaults.
const (
	DefaultRedisStream = "formguard:outbox"
	DefaultRedisGroup  = "formguard-delivery"
	// DefaultClaimIdle is how long a claimed message may stay unacknowledged
	// before another instance reclaims it (XAUTOCLAIM). It must exceed the
	// longest SMTP transaction, or a slow send may be repeated.
	DefaultClaimIdle = 5 * time.Minute
)

// RedisConfig configures a Redis Streams queue.
type RedisConfig struct {
	// Client is the Redis connection (required). Client, Ring and
	// ClusterClient all fit; with a cluster every key shares the stream's
	// hash tag when Stream contains one, e.g. "{formguard}:outbox".
	Client redis.UniversalClient
	// Stream is the stream key; the delayed set, live index and dead-letter
	// stream are derived from it. Zero value: DefaultRedisStream.
	Stream string
	// Group is the consumer group shared by all instances. Zero value:
	// DefaultRedisGroup.
	Group string
	// Consumer names this instance inside the group. Zero value: host name,
	// process ID and a random suffix (unique per process).
	Consumer string
	// ClaimIdle is the idle time after which a crashed (or stuck) consumer's
	// pending messages are reclaimed. Measured by Redis's clock. Zero
	// value: DefaultClaimIdle.
	ClaimIdle time.Duration
	// Now is the clock used to stamp Enqueued. Zero value: time.Now.
	Now func() time.Time
}

// Redis is a Queue on a Redis stream with a consumer group, so several
// formguard instances share delivery: XADD enqueues, XREADGROUP hands each
// entry to one consumer, XACK+XDEL records delivery, and XAUTOCLAIM lets a
// live instance take over the pending entries of a crashed one.
//
// Streams have no delays, so a retried message leaves the stream for a
// sorted set keyed by its due time and is moved back by one Lua script when
// due. A second sorted set indexes live messages by enqueue time for Stats.
type Redis struct {
	c                                   redis.UniversalClient
	stream, group, consumer             string
	delayed, delayedData, live, deadKey string
	claimIdle                           time.Duration
	now                                 func() time.Time
}

var _ Queue = (*Redis)(nil)

// NewRedis creates the consumer group if needed and returns the queue.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	if cfg.Client == nil {
		return nil, errors.New("outbox: RedisConfig.Client is required")
	}
	if cfg.ClaimIdle < 0 {
		return nil, errors.New("outbox: RedisConfig.ClaimIdle must not be negative")
	}
	q := &Redis{
		c:         cfg.Client,
		stream:    cmpOr(cfg.Stream, DefaultRedisStream),
		group:     cmpOr(cfg.Group, DefaultRedisGroup),
		consumer:  cfg.Consumer,
		claimIdle: cfg.ClaimIdle,
		now:       cfg.Now,
	}
	if q.now == nil {
		q.now = time.Now
	}
	if q.claimIdle == 0 {
		q.claimIdle = DefaultClaimIdle
	}
	if q.consumer == "" {
		host, _ := os.Hostname()
		q.consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[:6])
	}
	q.delayed = q.stream + ":delayed"
	q.delayedData = q.stream + ":delayed:data"
	q.live = q.stream + ":live"
	q.deadKey = q.stream + ":dead"
	if err := q.ensureGroup(ctx); err != nil {
		return nil, err
	}
	return q, nil
}

// ensureGroup creates the stream and consumer group if they do not exist
// (first start, or a Redis that restarted without persistence).
func (q *Redis) ensureGroup(ctx context.Context) error {
	// "0", not "$": entries added before the group existed are delivered too.
	err := q.c.XGroupCreateMkStream(ctx, q.stream, q.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("outbox: creating consumer group: %w", err)
	}
	return nil
}

func isNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Consumer returns this instance's consumer name.
func (q *Redis) Consumer() string { return q.consumer }

// redisEntry is a message as stored in Redis: metadata plus the raw bytes.
type redisEntry struct {
	*Message
	Raw []byte `json:"raw"`
}

func encodeRedis(m *Message) (string, error) {
	b, err := json.Marshal(redisEntry{Message: m, Raw: m.Raw})
	return string(b), err
}

func decodeRedis(s string) (*Message, error) {
	var e redisEntry
	e.Message = new(Message)
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	m := e.Message
	m.Raw = e.Raw
	if !validID(m.ID) || m.From == "" || len(m.To) == 0 || len(m.Raw) == 0 {
		return nil, fmt.Errorf("%w: incomplete entry", errCorrupt)
	}
	return m, nil
}

// Enqueue implements Queue: every message of the batch in one MULTI/EXEC.
func (q *Redis) Enqueue(ctx context.Context, msgs ...*Message) error {
	now := q.now()
	for _, m := range msgs {
		if err := prepare(m, now); err != nil {
			return err
		}
	}
	_, err := q.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			v, err := encodeRedis(m)
			if err != nil {
				return err
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: q.stream, Values: []string{"m", v}})
			p.ZAdd(ctx, q.live, redis.Z{Score: float64(m.Enqueued.UnixMilli()), Member: m.ID})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: enqueue: %w", err)
	}
	return nil
}

// promote moves due delayed messages back onto the stream, atomically.
var promote = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  local v = redis.call('HGET', KEYS[2], id)
  if v then redis.call('XADD', KEYS[3], '*', 'm', v) end
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
return #ids
`)

// Claim implements Queue: first reclaim entries idle longer than ClaimIdle
// (a crashed instance's), then read new ones.
func (q *Redis) Claim(ctx context.Context, now time.Time, max int) ([]*Message, error) {
	if max <= 0 {
		return nil, nil
	}
	if err := promote.Run(ctx, q.c, []string{q.delayed, q.delayedData, q.stream},
		now.UnixMilli(), max).Err(); err != nil {
		return nil, fmt.Errorf("outbox: promoting due messages: %w", err)
	}
	var out []*Message
	autoclaim := func() ([]redis.XMessage, error) {
		m, _, err := q.c.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: q.stream, Group: q.group, Consumer: q.consumer,
			MinIdle: q.claimIdle, Start: "0-0", Count: int64(max),
		}).Result()
		return m, err
	}
	claimed, err := autoclaim()
	if isNoGroup(err) {
		// Redis lost the group (restarted without persistence): recreate
		// it; anything enqueued since is still in the stream.
		if gerr := q.ensureGroup(ctx); gerr != nil {
			return nil, gerr
		}
		claimed, err = autoclaim()
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: reclaiming: %w", err)
	}
	out = q.decode(ctx, out, claimed)
	if len(out) < max {
		res, err := q.c.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: q.group, Consumer: q.consumer, Streams: []string{q.stream, ">"},
			Count: int64(max - len(out)), Block: -1,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return out, fmt.Errorf("outbox: reading stream: %w", err)
		}
		for _, s := range res {
			out = q.decode(ctx, out, s.Messages)
		}
	}
	return out, nil
}

func (q *Redis) decode(ctx context.Context, out []*Message, entries []redis.XMessage) []*Message {
	for _, x := range entries {
		v, _ := x.Values["m"].(string)
		m, err := decodeRedis(v)
		if err != nil {
			// Out of the delivery path, kept for a human.
			q.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.XAdd(ctx, &redis.XAddArgs{Stream: q.deadKey, Values: []string{"m", v, "reason", err.Error()}})
				p.XAck(ctx, q.stream, q.group, x.ID)
				p.XDel(ctx, q.stream, x.ID)
				return nil
			})
			continue
		}
		m.handle = x.ID
		out = append(out, m)
	}
	return out
}

// Ack implements Queue.
func (q *Redis) Ack(ctx context.Context, m *Message) error {
	_, err := q.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, q.stream, q.group, m.handle)
		p.XDel(ctx, q.stream, m.handle)
		p.ZRem(ctx, q.live, m.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: ack: %w", err)
	}
	return nil
}

// Retry implements Queue.
func (q *Redis) Retry(ctx context.Context, m *Message, next time.Time) error {
	m.NextAttempt = next
	v, err := encodeRedis(m)
	if err != nil {
		return fmt.Errorf("outbox: encoding message: %w", err)
	}
	_, err = q.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, q.delayedData, m.ID, v)
		p.ZAdd(ctx, q.delayed, redis.Z{Score: float64(next.UnixMilli()), Member: m.ID})
		p.XAck(ctx, q.stream, q.group, m.handle)
		p.XDel(ctx, q.stream, m.handle)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: retry: %w", err)
	}
	return nil
}

// Dead implements Queue: the dead-letter stream keeps the message and reason.
func (q *Redis) Dead(ctx context.Context, m *Message, reason string) error {
	m.LastError = reason
	v, err := encodeRedis(m)
	if err != nil {
		return fmt.Errorf("outbox: encoding message: %w", err)
	}
	_, err = q.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: q.deadKey, Values: []string{"m", v, "reason", reason}})
		p.XAck(ctx, q.stream, q.group, m.handle)
		p.XDel(ctx, q.stream, m.handle)
		p.ZRem(ctx, q.live, m.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: dead letter: %w", err)
	}
	return nil
}

// DeadLetters returns up to max dead-lettered messages with their reasons.
func (q *Redis) DeadLetters(ctx context.Context, max int64) ([]*Message, error) {
	xs, err := q.c.XRangeN(ctx, q.deadKey, "-", "+", max).Result()
	if err != nil {
		return nil, fmt.Errorf("outbox: reading dead letters: %w", err)
	}
	var out []*Message
	for _, x := range xs {
		v, _ := x.Values["m"].(string)
		m, err := decodeRedis(v)
		if err != nil {
			m = &Message{}
		}
		m.LastError, _ = x.Values["reason"].(string)
		out = append(out, m)
	}
	return out, nil
}

// Stats implements Queue.
func (q *Redis) Stats(ctx context.Context, now time.Time) (Stats, error) {
	var depth, dead *redis.IntCmd
	var oldest *redis.ZSliceCmd
	var pending *redis.XPendingCmd
	_, err := q.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		depth = p.ZCard(ctx, q.live)
		dead = p.XLen(ctx, q.deadKey)
		oldest = p.ZRangeWithScores(ctx, q.live, 0, 0)
		pending = p.XPending(ctx, q.stream, q.group)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Stats{}, fmt.Errorf("outbox: stats: %w", err)
	}
	s := Stats{Depth: int(depth.Val()), Dead: int(dead.Val())}
	if p, err := pending.Result(); err == nil {
		s.InFlight = int(p.Count)
	}
	if z := oldest.Val(); len(z) == 1 {
		s.Oldest = time.UnixMilli(int64(z[0].Score))
		s.OldestAge = max(now.Sub(s.Oldest), 0)
	}
	return s, nil
}

// Close implements Queue. The Redis client belongs to the caller.
func (q *Redis) Close() error { return nil }

// String names the queue for logs.
func (q *Redis) String() string {
	return "redis stream " + q.stream + " group " + q.group + " consumer " + q.consumer + " claim-idle " + strconv.FormatInt(q.claimIdle.Milliseconds(), 10) + "ms"
}
