// Package mailer turns accepted form submissions into mail the way a
// careful mail administrator would send it, and delivers it durably.
//
// A [Mailer] consumes a *post.Submission and
//
//   - renders it with the form's [Template] (text/template for the plain
//     part, html/template for the HTML part; the visitor's text is always
//     template data, never template source);
//   - builds the message with github.com/wneessen/go-mail: header From on
//     the site's domain (the display name may carry a sanitised visitor
//     name, "Ada via Example"), envelope MAIL FROM on the same
//     organisational domain (SPF alignment, RFC 7208), the visitor's
//     address only in Reply-To, Message-ID <submissionID.random@domain>
//     (RFC 5322 3.6.4), Auto-Submitted: auto-generated (RFC 3834 5); share
//     forms get one message per recipient so recipients never see each
//     other;
//   - checks it against its [Policy] and refuses, with a typed
//     [PolicyError], anything misaligned, including hand-built messages
//     ([Mailer.DeliverMsg]) and bytes read back from the outbox;
//   - queues it durably in an outbox.Queue, unsigned but sealed (an HMAC
//     keyed by the DKIM key, so the workers sign only what a Mailer
//     queued), and returns ([Mailer.Deliver]);
//   - delivers it in the background ([Mailer.Start]): a worker signs it
//     with go-mail's native DKIM signer right before sending (RFC 6376;
//     Ed25519 per RFC 8463; t= is the send time), d= the From domain, over
//     From, Reply-To, To, Subject, Date, Message-ID, MIME-Version,
//     Content-Type and Auto-Submitted, with From, Subject and Reply-To
//     over-signed (RFC 6376 8.15), checks the Policy again and sends it
//     through a [Transport]: [SMTP] (go-mail Client, pooled connections,
//     mandatory STARTTLS or implicit TLS off loopback) or [File] (.eml
//     files). Signing thus runs on the worker pool, off the request path.
//     Failures are typed: [IsTemporary] (4yz, network) are retried with
//     backoff, permanent ones (5yz, [IsPermanent]) are dead-lettered.
//
// Keys: [GenerateKey], [ParseKey], [LoadKey] and [DNSRecord] are the
// building blocks of `formguard dkim-keygen`.
package mailer
