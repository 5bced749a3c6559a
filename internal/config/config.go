package config

import (
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/ratelimit"
)

// Defaults, as named constants so that the README configuration reference and the code
// cannot disagree.
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultDataDir           = "./var"
	DefaultOutboxSubdir      = "outbox"   // under data_dir when mail.outbox_dir is empty
	DefaultDKIMKeyFile       = "dkim.pem" // under data_dir when mail.dkim.key_file is empty
	DefaultDKIMSelector      = "s1"
	DefaultTransport         = TransportFile
	DefaultSMTPTLS           = TLSStartTLS
	DefaultSMTPTimeout       = 30 * time.Second
	DefaultCaptchaProvider   = ProviderPoW
	DefaultPoWMaxNumber      = 100_000
	DefaultPoWExpires        = 10 * time.Minute
	DefaultRecaptchaMinScore = 0.5
	DefaultLogFormat         = LogAuto
	DefaultLogLevel          = "info"
	DefaultMinFill           = 3 * time.Second
	DefaultTokenMaxAge       = 2 * time.Hour
	// DefaultRedisTimeout is the service's per-call Redis budget for rate
	// limits and the replay cache. Larger than the library's 50 ms
	// (redisstore.DefaultTimeout): a service container shares its CPUs, and
	// a timeout under load fails closed for every visitor.
	DefaultRedisTimeout = 250 * time.Millisecond

	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultShutdownTimeout   = 20 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
)

// DefaultCaptchaVerify is the service-wide cap on third-party siteverify
// calls: 20 a second, bursting to 20.
var DefaultCaptchaVerify = ratelimit.Limit{Count: 20, Period: time.Second}

// Mail transports.
const (
	TransportFile = "file" // write .eml files into the outbox directory
	TransportSMTP = "smtp" // deliver to an SMTP relay
)

// Outboxes (mail.outbox).
const (
	OutboxKindDir   = "dir"   // the directory outbox at mail.outbox_dir
	OutboxKindRedis = "redis" // a Redis stream shared by every instance
)

// SMTP connection security.
const (
	TLSNone     = "none"     // plain text; only allowed without AUTH or to loopback
	TLSStartTLS = "starttls" // STARTTLS required (RFC 3207)
	TLSImplicit = "tls"      // TLS from the first byte (RFC 8314)
)

// CAPTCHA providers.
const (
	ProviderPoW       = "pow"
	ProviderTurnstile = "turnstile"
	ProviderHCaptcha  = "hcaptcha"
	ProviderReCAPTCHA = "recaptcha"
	ProviderNone      = "none"
)

// Log formats.
const (
	LogAuto = "auto" // text when stderr is a terminal, else JSON
	LogJSON = "json"
	LogText = "text"
)

// Form kinds.
const (
	KindContact = "contact"
	KindShare   = "share"
)

// Config is the service's whole configuration. Its YAML keys are the
// service contract of DESIGN.md; the zero value of every security setting
// is the safe one.
type Config struct {
	// Listen is the HTTP listen address (host:port). Default DefaultListen;
	// FORMGUARD_LISTEN overrides it.
	Listen string `yaml:"listen"`
	// AdminListen, when set, is the only address serving /metrics and
	// /readyz (/healthz is on both); a bare port (":9090" or "9090") binds
	// 127.0.0.1. Empty: everything is served on Listen.
	// FORMGUARD_ADMIN_LISTEN overrides it.
	AdminListen string `yaml:"admin_listen"`
	// DataDir holds state: the default outbox and DKIM key. Default
	// DefaultDataDir. Relative paths are relative to the working directory.
	DataDir string `yaml:"data_dir"`
	Log     Log    `yaml:"log"`
	HTTP    HTTP   `yaml:"http"`
	Site    Site   `yaml:"site"`
	// TrustedProxies are CIDRs (or single IPs) whose X-Forwarded-For is
	// believed. Default none: the client is RemoteAddr.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// RedisURL switches rate limits, the replay cache and the outbox to
	// Redis. Empty: in-memory limits and replay cache, directory outbox.
	// FORMGUARD_REDIS_URL overrides it.
	RedisURL string `yaml:"redis_url"`
	// KeySecretEnv / KeySecretFile name where the secret keying the hashes
	// of client IPs and addresses is kept. Empty: derived from the DKIM
	// key, so every instance sharing a Redis and a key agrees on it.
	KeySecretEnv  string `yaml:"key_secret_env"`
	KeySecretFile string `yaml:"key_secret_file"`
	KeySecret     Secret `yaml:"key_secret,omitempty"`
	// Limits holds the service-wide limit.
	Limits GlobalLimits `yaml:"limits"`
	Mail   Mail         `yaml:"mail"`
	// Captcha is the default bot defence of every form.
	Captcha Captcha `yaml:"captcha"`
	// Forms maps a form's name (the {form} of POST /f/{form}) to its policy.
	Forms map[string]*Form `yaml:"forms"`
	// Demo serves a page at GET / with every form working, for trying the
	// service out. Default false; the built-in demo config sets it.
	Demo bool `yaml:"demo"`
}

// Log configures logging.
type Log struct {
	// Format is auto (default), json or text.
	Format string `yaml:"format"`
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
}

// HTTP bounds the HTTP server. Zero durations take the defaults.
type HTTP struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
}

// Site is the web site the forms belong to.
type Site struct {
	// Domain is the only domain mail is sent from (required).
	Domain string `yaml:"domain"`
	// Name is used in display names and templates. Default: Domain.
	Name string `yaml:"name"`
	// Origins are the scheme://host[:port] origins allowed in Origin and
	// Referer, for CORS, and for shared URLs (required, at least one).
	Origins []string `yaml:"origins"`
}

// GlobalLimits are service-wide limits.
type GlobalLimits struct {
	// Global caps submissions across all forms. Default guard.DefaultGlobal.
	Global Limit `yaml:"global"`
	// RedisFallback, with redis_url set, decides from a local in-memory
	// store with every limit divided by 4 while Redis is unreachable.
	// Default false: refuse posts with 503 limiter_unavailable until Redis
	// answers again (fail closed, never open).
	RedisFallback bool `yaml:"redis_fallback"`
	// RedisTimeout bounds each rate-limit and replay-cache round trip to
	// Redis; a call that takes longer counts as Redis being unreachable
	// (RedisFallback decides what happens then). Default
	// DefaultRedisTimeout.
	RedisTimeout time.Duration `yaml:"redis_timeout"`
	// CaptchaVerify caps calls to third-party siteverify endpoints across
	// the service (a token bucket of Count, refilled over Period): a flood
	// of garbage tokens must not become a flood of outgoing calls spending
	// the provider quota. A verification waits up to a second for its
	// turn, then fails closed (503 captcha_unavailable). Default
	// DefaultCaptchaVerify. The built-in proof-of-work is local and not
	// capped.
	CaptchaVerify Limit `yaml:"captcha_verify"`
	// MemoryKeys caps the keys of the in-memory rate-limit store (without
	// redis_url, and the local fallback with limits.redis_fallback). 0
	// means ratelimit.DefaultMaxKeys.
	MemoryKeys int `yaml:"memory_keys"`
	// ReplayEntries caps the in-memory single-use token cache (without
	// redis_url). 0 means captcha.DefaultReplayEntries.
	ReplayEntries int `yaml:"replay_entries"`
}

// Mail configures how mail is built and delivered.
type Mail struct {
	// From is the header From address; it must be on site.domain (required).
	From string `yaml:"from"`
	// Bounce is the envelope MAIL FROM; it must share From's organisational
	// domain (SPF alignment, RFC 7489 3.1.2). Default: From.
	Bounce string `yaml:"bounce"`
	// Transport is file (default) or smtp.
	Transport string `yaml:"transport"`
	// Outbox is where accepted mail is queued: dir (at OutboxDir) or redis (a
	// stream shared by every instance; needs redis_url). Default: redis
	// when redis_url is set, else dir.
	Outbox string `yaml:"outbox"`
	// OutboxDir is the directory outbox (and, with the file transport, where
	// .eml files land under sent/). Default: data_dir/outbox.
	OutboxDir string `yaml:"outbox_dir"`
	SMTP      SMTP   `yaml:"smtp"`
	DKIM      DKIM   `yaml:"dkim"`
	// Retry shapes the outbox's retries of temporary delivery failures.
	Retry Retry `yaml:"retry"`
	// Workers is the number of delivery goroutines. Default
	// DefaultWorkers(): 4 per CPU, at least 4, at most 64.
	Workers int `yaml:"workers"`
}

// Retry shapes the outbox's retries: attempt n waits a random time up to
// min(max_delay, base_delay·2^(n-1)); a message still undelivered after
// max_age is dead-lettered.
type Retry struct {
	BaseDelay time.Duration `yaml:"base_delay"`
	MaxDelay  time.Duration `yaml:"max_delay"`
	MaxAge    time.Duration `yaml:"max_age"`
}

// SMTP is the relay the smtp transport delivers to.
type SMTP struct {
	// Addr is host:port (required for the smtp transport). FORMGUARD_SMTP_ADDR
	// overrides it.
	Addr string `yaml:"addr"`
	// TLS is none, starttls (default) or tls.
	TLS string `yaml:"tls"`
	// Username enables AUTH. Empty: no AUTH.
	Username string `yaml:"username"`
	// PasswordEnv / PasswordFile name where the password is kept;
	// FORMGUARD_SMTP_PASSWORD overrides both.
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// Password is resolved at load time; it cannot be set in the file.
	Password Secret `yaml:"password,omitempty"`
	// HELO is the name sent in EHLO. Default: site.domain.
	HELO string `yaml:"helo"`
	// Timeout bounds one SMTP conversation. Default DefaultSMTPTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// DKIM configures signing (RFC 6376; Ed25519 per RFC 8463).
type DKIM struct {
	// Selector is the DNS selector (selector._domainkey.domain). Default
	// DefaultDKIMSelector.
	Selector string `yaml:"selector"`
	// KeyFile is a PEM RSA (>=2048 bits) or Ed25519 private key. Default:
	// data_dir/dkim.pem.
	KeyFile string `yaml:"key_file"`
	// Generate creates KeyFile on first start when it is missing (the demo
	// does). Default false: a missing key is a configuration error.
	Generate bool `yaml:"generate"`
}

// Captcha configures a bot defence.
type Captcha struct {
	// Provider is pow (default), turnstile, hcaptcha, recaptcha or none.
	Provider string `yaml:"provider"`
	// SecretEnv / SecretFile name where the provider secret (or, for pow,
	// the HMAC key; default random per process) is kept.
	// FORMGUARD_CAPTCHA_SECRET overrides both.
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
	Secret     Secret `yaml:"secret,omitempty"`
	// SiteKey is the provider's public site key (required for third-party
	// providers).
	SiteKey string `yaml:"site_key"`
	// VerifyURL overrides the provider's siteverify URL (https, or http to
	// a loopback host for tests).
	VerifyURL string `yaml:"verify_url"`
	// MinScore is reCAPTCHA v3's threshold. Zero value: v2 (no score).
	MinScore float64 `yaml:"min_score"`
	// Action is reCAPTCHA v3's expected action. Empty: not checked.
	Action string `yaml:"action"`
	// PoW tunes the built-in proof-of-work.
	PoW PoW `yaml:"pow"`
}

// PoW tunes the built-in proof-of-work (ALTCHA format).
type PoW struct {
	// MaxNumber is the largest secret number; the expected work is half of
	// it in SHA-256 hashes. Default DefaultPoWMaxNumber.
	MaxNumber int64 `yaml:"max_number"`
	// Expires is a challenge's lifetime. Default DefaultPoWExpires.
	Expires time.Duration `yaml:"expires"`
}

// Form is one form's policy.
type Form struct {
	// Kind is contact (default) or share.
	Kind string `yaml:"kind"`
	// To are a contact form's fixed recipients.
	To []string `yaml:"to"`
	// Choices are named recipient lists a contact form's visitor may pick
	// with ChoiceField.
	Choices     map[string][]string `yaml:"choices"`
	ChoiceField string              `yaml:"choice_field"`
	// MaxRecipients caps a share form's visitor recipients. Default 1.
	MaxRecipients int `yaml:"max_recipients"`
	// RecipientDomains, when set, are the only domains a share form may send
	// to; DenyRecipientDomains are never sent to.
	RecipientDomains     []string `yaml:"recipient_domains"`
	DenyRecipientDomains []string `yaml:"deny_recipient_domains"`
	// Fields renames the standard fields (keys name, email, subject,
	// message, to, url).
	Fields guard.FieldNames `yaml:"fields"`
	// ExtraFields are additional single-line fields mailed along.
	ExtraFields  []string `yaml:"extra_fields"`
	RequireEmail bool     `yaml:"require_email"`
	MaxName      int      `yaml:"max_name"`
	MaxSubject   int      `yaml:"max_subject"`
	MaxMessage   int      `yaml:"max_message"`
	// MaxLinks caps links in the message; negative: none at all.
	MaxLinks int   `yaml:"max_links"`
	MaxBody  int64 `yaml:"max_body"`
	// AllowMissingOrigin accepts posts with neither Origin nor Referer.
	AllowMissingOrigin bool `yaml:"allow_missing_origin"`
	// AllowNoBotDefence lets a share form run with captcha provider none.
	AllowNoBotDefence bool `yaml:"allow_no_bot_defence"`
	// Limits are the form's rate limits.
	Limits Limits `yaml:"limits"`
	// SuccessURL and ErrorURL are same-site pages plain HTML posts are
	// redirected to (303). Empty: a small built-in page.
	SuccessURL string `yaml:"success_url"`
	ErrorURL   string `yaml:"error_url"`
	// Captcha overrides the service's captcha for this form. Unset keys
	// are inherited from the service's captcha block.
	Captcha *Captcha `yaml:"captcha"`
	// Template customises the form's mail. Zero value: the built-in
	// template of its kind.
	Template *Template `yaml:"template"`
	// FormToken, when present (even as {}), requires a signed single-use
	// token issued by GET /f/{form}/token at least MinFill before the post.
	// Zero value: no form token.
	FormToken *FormToken `yaml:"form_token"`
}

// FormToken tunes a form's signed single-use token.
type FormToken struct {
	// MinFill is the least time between issuing the token and the post
	// (people do not fill a form in two seconds). Default DefaultMinFill.
	MinFill time.Duration `yaml:"min_fill"`
	// MaxAge is how long a token stays valid. Default DefaultTokenMaxAge.
	MaxAge time.Duration `yaml:"max_age"`
}

// Limits are one form's rate limits, each "COUNT/[N]UNIT" (5/h, 30/10m).
// Unset tiers take the guard's defaults.
type Limits struct {
	PerIP        Limit `yaml:"per_ip"`
	PerNetwork   Limit `yaml:"per_network"`
	PerSender    Limit `yaml:"per_sender"`
	PerRecipient Limit `yaml:"per_recipient"`
	PerForm      Limit `yaml:"per_form"`
	// Global caps all forms together; when several places set it the
	// strictest wins (there is one global budget).
	Global Limit `yaml:"global"`
}
