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
//  8. signed form token and CAPTCHA / proof-of-work (see package captcha)
//  9. every rate-limit tier (client IP or IPv6 /64, Reply-To, each recipient,
//     form, global) decided in ONE Store call that consumes all or nothing
//
// A Submission never carries a sender: mail built from it is sent from the
// site's own domain, and the visitor's address is only ever a Reply-To.
//
// Importing guard alone gives a working in-memory, zero-network setup; the
// Redis store lives in guard/ratelimit/redisstore.
package guard
