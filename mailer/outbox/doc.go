// Package outbox is formguard's durable mail queue and delivery worker.
//
// [Queue.Enqueue] returns only once a message is durable: fsynced in the
// directory spool ([NewDir]) or accepted by Redis in one MULTI/EXEC
// ([NewRedis]). A [Worker] hands each due message to a [Handler] and records
// the outcome with [Queue.Ack], [Queue.Retry] (backoff with full jitter) or
// [Queue.Dead] (permanent failure or older than MaxAge).
//
// Delivery is at-least-once: a crash between the relay's final 250 to DATA
// (RFC 5321 4.1.1.4) and the Ack sends the message again, with the same
// Message-ID so receivers can drop the duplicate. See docs/mailer.md.
package outbox
