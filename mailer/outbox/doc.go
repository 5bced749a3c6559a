// Package outbox is formguard's durable mail queue and delivery worker.
//
// A message is accepted by [Queue.Enqueue] only once it is durable: the
// directory spool ([NewDir], the default) has written, fsynced and renamed
// its file and fsynced the directory, so it survives kill -9 and power loss;
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
// need a two-phase protocol the SMTP relay does not offer.
//
// # Group commit
//
// Enqueue takes several messages at once (a share form yields one message
// per recipient) and makes them durable together: a single MULTI/EXEC for
// Redis; for the directory spool one fsync per message file and one
// directory fsync, which is moreover shared with every concurrent caller
// (Enqueue, Ack, Retry, Dead): while one directory fsync runs, the callers
// that arrive meanwhile wait for and share the next one. The spool file
// format (a header line, a JSON metadata line, the raw message) is
// self-delimiting, so a later version can also append many messages to one
// segment file per fsync without a format change for readers.
package outbox
