// Package server is the formguard service's HTTP side: it wires a
// guard.Guard in front of the mailer's durable outbox and serves the
// routes listed below (docs/configuration.md, "HTTP answers").
//
// Routes:
//
//	POST    /f/{form}            guard.Check, then the mail is queued durably
//	OPTIONS /f/{form}            CORS preflight for the configured origins
//	GET     /f/{form}/challenge  a proof-of-work challenge (pow forms only)
//	GET     /assets/...          the proof-of-work widget and demo assets
//	GET     /healthz             the process is alive
//	GET     /readyz              Redis and the outbox answer
//	GET     /metrics             Prometheus metrics
//	GET     /                    the demo page (when enabled)
//
// A post is answered only after its mail is durably in the outbox: if the
// outbox cannot take it the answer is 503 outbox_unavailable and nothing is
// accepted. New builds the handler from parts (Config); Open builds every
// part from a config.Config and Service.Run serves it with timeouts and a
// graceful shutdown.
package server
