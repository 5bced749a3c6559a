// Package e2e holds end-to-end tests of the formguard binary: they build
// it with `go build`, run it as a real process against a loopback SMTP
// server, a real redis-server and a headless Chromium, and check what the
// SMTP server (or the outbox directory) received.
package e2e
