// Package server is the formguard service's HTTP side: a guard.Guard in
// front of the mailer's durable outbox. A post is answered only after its
// mail is durably in the outbox; otherwise the answer is 503
// outbox_unavailable. New builds the handler from parts, Open builds every
// part from a config.Config and Service.Run serves it. Routes and answers:
// docs/configuration.md.
package server
