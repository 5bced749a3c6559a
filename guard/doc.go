// Package guard stops web forms from being open mail relays.
//
// A Guard checks each post to a contact or "share this page" form, cheapest
// check first, and turns it into a Submission that can be mailed safely, or
// refuses it with a typed *Error (an HTTP status, a stable code and a fixed
// message; the cause is for logs only):
//
//  1. method, body size, content type (urlencoded, multipart, JSON)
//  2. Origin, else Referer, on an allowed origin (fail closed when absent)
//  3. strict parsing: valid UTF-8, no duplicate fields, no unknown fields,
//     no field by which a visitor could choose a sender or extra recipient
//  4. honeypot (answered like success, nothing delivered)
//  5. field rules: lengths, one bare address for Reply-To, no line breaks,
//     control characters or encoded words in single-line fields
//     (validator/v10 struct tags with formguard's own rules; a test holds
//     them to a hand-written reference)
//  6. recipients: from configuration for contact forms; at most
//     MaxRecipients visitor addresses for share forms, never truncated
//  7. content rules: link count, shared URL on the site, same-site redirects
//  8. the client's own limits: its address (IPv4, IPv6 /64) and its network
//     (IPv4 /24, IPv6 /48), and its ban, in one Store call
//  9. signed form token and CAPTCHA / proof-of-work (see package captcha)
//  10. the shared limits: form, global, Reply-To and each recipient (both
//     counted per mailbox, however the address is spelt), in one Store call
//     that consumes all or nothing
//
// A Submission never carries a sender: mail built from it is sent from the
// site's own domain, and the visitor's address is only ever a Reply-To.
//
// Importing guard alone gives a working in-memory, zero-network setup; the
// Redis store lives in guard/ratelimit/redisstore.
//
// # Order of checks
//
// Cheapest and per-client first. Steps 1 to 7 are local: they make no
// store call, except that an offence no browser commits (honeypot,
// forbidden field, header injection) is reported to the store's ban list,
// as is a failed token or CAPTCHA at step 9. Everything other visitors
// share (the single-use token store, a CAPTCHA provider's verify budget,
// proof-of-work verification, the shared limits) comes after step 8, so a
// banned or rate-limited client is
// refused before it spends any of it. Step 8 consumes one unit of the
// client's own budget whenever it passes, even if a later step refuses the
// post: each token recorded and each CAPTCHA verified is paid for by the
// client that sent it, which bounds them per client. A post refused before
// step 10 consumes nothing from the shared limits. Only a refusal carries
// rate-limit headers, so a honeypot hit answered as success is
// indistinguishable from a real accept.
//
// # Logs
//
// Each decision is one log line, but a client repeating one refusal gets
// at most a few lines a minute per refusal code, then one summary line
// with the count of those left out (Stats.LogSuppressed counts them too);
// the lines' free text is capped in length. Clients beyond the sampler's
// bound share one budget, so a flood from many addresses is bounded too.
package guard
