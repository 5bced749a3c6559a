// Command formguard is the standalone form-to-mail service: it accepts web
// form posts at POST /f/{form}, refuses anything that would make it an open
// relay, and sends the mail from the site's own domain, SPF-aligned and
// DKIM-signed, through a durable outbox.
//
// Usage:
//
//	formguard [serve] [-config FILE] [-check] [-dns HOST:PORT] [-no-doctor]
//	formguard doctor [-config FILE] [-dns HOST:PORT] [-relay-ip IP ...] [-json]
//	formguard dkim-keygen [-alg rsa|ed25519] [-bits 2048] [-selector s1] -domain D -out FILE
//	formguard version
//
// Without -config, formguard reads ./formguard.yaml when it exists and the
// built-in demo config otherwise. The environment variables
// FORMGUARD_LISTEN, FORMGUARD_ADMIN_LISTEN, FORMGUARD_REDIS_URL, FORMGUARD_SMTP_ADDR,
// FORMGUARD_SMTP_PASSWORD and FORMGUARD_CAPTCHA_SECRET override the file.
//
// Exit status:
//
//	0  success (serve stopped cleanly, the config is valid, no doctor errors)
//	1  serve failed while running, or doctor found at least one error
//	2  bad usage, an invalid config, or doctor could not ask DNS
package main
