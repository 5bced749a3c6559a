// Package captcha verifies bot-defence tokens: third-party CAPTCHAs
// (Cloudflare Turnstile, hCaptcha, Google reCAPTCHA v2/v3), a built-in
// proof-of-work challenge in ALTCHA's format, and signed single-use form
// tokens. Every token kind is single use, enforced by a ReplayCache.
//
// Every verifier implements Verifier and fails closed: a provider that is
// slow, down or answers something unexpected yields ErrUnavailable, never a
// pass. Errors wrap exactly one sentinel (ErrInvalid, ErrReplayed, ...) so
// callers map them with errors.Is; the wrapped detail is for logs and never
// contains a secret or a token.
//
// Third-party verifiers (NewTurnstile, NewHCaptcha, NewReCAPTCHA) call the
// provider's siteverify endpoint with a form-encoded POST and then check
// more than "success": the hostname must be one of the site's, the action
// must match, the score must reach the threshold, the challenge timestamp
// must be fresh, and the token must not have been seen before.
//
// The built-in proof-of-work (NewPoW) issues challenges in ALTCHA's format,
// so either the small widget in guard/captcha/widget or the official
// `altcha` web component (v1/v2 challenge format) can solve them. A
// challenge is signed with HMAC-SHA256, bound to one form, expires, and its
// difficulty can rise for clients that are being rate-limited.
//
// Signed form tokens (NewFormToken) are HMAC-signed (form, issue time,
// nonce) triples embedded in the HTML page: they enforce a minimum fill
// time, a maximum age and single use.
//
// Replay caches store SHA-256 hashes of tokens, never the tokens. The
// in-memory cache (NewMemoryReplay) is bounded: when it is full of
// unexpired entries, a new token evicts the one that expires soonest
// rather than every visitor being refused (see MemoryReplay).
package captcha
