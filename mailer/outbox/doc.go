// Package outbox is formguard's durable mail queue and delivery worker.
//
// A message is accepted by [Queue.Enqueue] only once it is durable: the
// directory spool ([NewDir], the default) has appended it to its log
// segment and fsynced it (a new segment's directory entry is fsynced before
// anything in it is acknowledged), so it survives kill -9 and power loss;
// the Redis Streams queue ([NewRedis]) has had the entry accepted by Redis
// inside one MULTI/EXEC (as durable as that server's persistence settings).
//
// A [Worker] claims due messages, hands each to a [Handler] (the mailer's
// SMTP send) and records the outcome:
//
//   - success: [Queue.Ack] removes the message; it is never sent again;
//   - temporary failure: [Queue.Retry] reschedules it with exponential
//     backoff and full jitter;
//   - permanent failure (an error whose Temporary() method reports false),
//     or a message older than MaxAge: [Queue.Dead] moves it to the
//     dead-letter area with the reason.
//
// # At-least-once, and the one window
//
// Delivery is at-least-once. There is exactly one window in which a message
// can be sent twice: between the relay's final 250 reply to DATA (RFC 5321
// 4.1.1.4: the relay now owns the message) and the Ack that records it. If
// the process dies inside that window (a few microseconds for the directory
// spool: one unlink and one directory fsync; one round trip for Redis) the
// message is sent again after restart, with the same Message-ID, which lets
// receiving systems drop the duplicate. Closing the window completely would
// need a two-phase protocol the SMTP relay does not offer. An Ack that fails
// while the process lives on (Redis down, a disk error) does not open the
// window wider: the Worker records the outcome again before claiming
// anything else, and records, rather than sends, a message claimed again
// while its delivery is unrecorded.
//
// # Group commit
//
// Enqueue takes several messages at once (a share form yields one message
// per recipient) and makes them durable together: a single MULTI/EXEC for
// Redis, one log append for the directory spool. The spool moreover shares
// each write and fsync among every concurrent caller (Enqueue, Ack, Retry,
// Dead): while one fsync runs, the records that arrive meanwhile wait for
// and share the next one, so under load one fsync carries many messages
// and nobody waits for a batch to fill when load is light. Delivered and
// dead-lettered messages are recorded by "done" records in the same log; a
// segment is deleted once nothing in it is live.
package outbox
