// Package mailer turns accepted form submissions into aligned, DKIM-signed
// mail and delivers it durably.
//
// A [Mailer] renders a *post.Submission with the form's [Template] (the
// visitor's text is always template data, never template source), builds
// the message with From on the site's domain and the visitor only in
// Reply-To, refuses anything its [Policy] finds misaligned ([PolicyError]),
// and queues it sealed but unsigned in an outbox.Queue ([Mailer.Deliver]).
// Workers ([Mailer.Start]) sign it with DKIM (RFC 6376, RFC 8463) right
// before sending, check the Policy again and send it through a [Transport]
// ([SMTP] or [File]); temporary failures ([IsTemporary]) are retried,
// permanent ones ([IsPermanent]) dead-lettered. See docs/mailer.md.
package mailer
