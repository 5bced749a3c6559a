package config

import (
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/ratelimit"
)

// Defaults, as named constants so that docs/configuration.md and the code
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

// Config is the service's whole configuration, one struct per YAML
// section. docs/configuration.md describes every key and its default;
// the zero value of every security setting is the safe one. Secrets are
// never read from the file: a *_env or *_file key names where they are,
// and Load resolves them into the Secret fields.
type Config struct {
	Listen string `yaml:"listen"`
	// AdminListen, when set, is the only address serving /metrics and
	// /readyz; a bare port binds 127.0.0.1.
	AdminListen    string   `yaml:"admin_listen"`
	DataDir        string   `yaml:"data_dir"`
	Log            Log      `yaml:"log"`
	HTTP           HTTP     `yaml:"http"`
	Site           Site     `yaml:"site"`
	TrustedProxies []string `yaml:"trusted_proxies"`
	// RedisURL moves rate limits, the replay cache and (by default) the
	// outbox to Redis.
	RedisURL string `yaml:"redis_url"`
	// KeySecret keys the hashes of client IPs and addresses, the form
	// tokens and the proof-of-work. Unset: derived from the DKIM key, so
	// every instance sharing a Redis and a key agrees on it.
	KeySecretEnv  string       `yaml:"key_secret_env"`
	KeySecretFile string       `yaml:"key_secret_file"`
	KeySecret     Secret       `yaml:"key_secret,omitempty"`
	Limits        GlobalLimits `yaml:"limits"`
	Mail          Mail         `yaml:"mail"`
	// Captcha is the default bot defence of every form.
	Captcha Captcha `yaml:"captcha"`
	// Forms maps a form's name (the {form} of POST /f/{form}) to its policy.
	Forms map[string]*Form `yaml:"forms"`
	// Demo serves a page at GET / with every form working.
	Demo bool `yaml:"demo"`
}

// Log configures logging: format auto, json or text; level debug, info,
// warn or error.
type Log struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// HTTP bounds the HTTP server.
type HTTP struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
}

// Site is the web site the forms belong to: the only domain mail is sent
// from, its display name, and the origins allowed to post.
type Site struct {
	Domain  string   `yaml:"domain"`
	Name    string   `yaml:"name"`
	Origins []string `yaml:"origins"`
}

// GlobalLimits are service-wide limits and store capacities.
type GlobalLimits struct {
	Global Limit `yaml:"global"`
	// RedisFallback decides from a local store while Redis is unreachable;
	// unset, posts are refused (fail closed, never open).
	RedisFallback bool          `yaml:"redis_fallback"`
	RedisTimeout  time.Duration `yaml:"redis_timeout"`
	// CaptchaVerify caps calls to third-party siteverify endpoints, so a
	// flood of garbage tokens cannot spend the provider's quota.
	CaptchaVerify Limit `yaml:"captcha_verify"`
	MemoryKeys    int   `yaml:"memory_keys"`
	ReplayEntries int   `yaml:"replay_entries"`
}

// Mail configures how mail is built, queued and delivered.
type Mail struct {
	From string `yaml:"from"`
	// Bounce is the envelope MAIL FROM; it must share From's organisational
	// domain so SPF aligns (RFC 7489 3.1.2).
	Bounce    string `yaml:"bounce"`
	Transport string `yaml:"transport"`
	Outbox    string `yaml:"outbox"`
	OutboxDir string `yaml:"outbox_dir"`
	SMTP      SMTP   `yaml:"smtp"`
	DKIM      DKIM   `yaml:"dkim"`
	Retry     Retry  `yaml:"retry"`
	Workers   int    `yaml:"workers"`
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
	Addr         string        `yaml:"addr"`
	TLS          string        `yaml:"tls"`
	Username     string        `yaml:"username"`
	PasswordEnv  string        `yaml:"password_env"`
	PasswordFile string        `yaml:"password_file"`
	Password     Secret        `yaml:"password,omitempty"`
	HELO         string        `yaml:"helo"`
	Timeout      time.Duration `yaml:"timeout"`
}

// DKIM configures signing (RFC 6376; Ed25519 per RFC 8463). Generate
// makes KeyFile on first start when it is missing (the demo does).
type DKIM struct {
	Selector string `yaml:"selector"`
	KeyFile  string `yaml:"key_file"`
	Generate bool   `yaml:"generate"`
}

// Captcha configures a bot defence. For pow the secret is the HMAC key of
// the challenges; MinScore and Action are reCAPTCHA v3's.
type Captcha struct {
	Provider   string  `yaml:"provider"`
	SecretEnv  string  `yaml:"secret_env"`
	SecretFile string  `yaml:"secret_file"`
	Secret     Secret  `yaml:"secret,omitempty"`
	SiteKey    string  `yaml:"site_key"`
	VerifyURL  string  `yaml:"verify_url"`
	MinScore   float64 `yaml:"min_score"`
	Action     string  `yaml:"action"`
	PoW        PoW     `yaml:"pow"`
}

// PoW tunes the built-in proof-of-work (ALTCHA format): the expected work
// is MaxNumber/2 SHA-256 hashes.
type PoW struct {
	MaxNumber int64         `yaml:"max_number"`
	Expires   time.Duration `yaml:"expires"`
}

// Form is one form's policy: the YAML face of guard.Form (see
// guardForm), plus what the service adds around the guard: its CAPTCHA,
// form token and mail template.
type Form struct {
	Kind                 string              `yaml:"kind"`
	To                   []string            `yaml:"to"`
	Choices              map[string][]string `yaml:"choices"`
	ChoiceField          string              `yaml:"choice_field"`
	MaxRecipients        int                 `yaml:"max_recipients"`
	RecipientDomains     []string            `yaml:"recipient_domains"`
	DenyRecipientDomains []string            `yaml:"deny_recipient_domains"`
	Fields               guard.FieldNames    `yaml:"fields"`
	ExtraFields          []string            `yaml:"extra_fields"`
	RequireEmail         bool                `yaml:"require_email"`
	MaxName              int                 `yaml:"max_name"`
	MaxSubject           int                 `yaml:"max_subject"`
	MaxMessage           int                 `yaml:"max_message"`
	MaxLinks             int                 `yaml:"max_links"`
	MaxBody              int64               `yaml:"max_body"`
	AllowMissingOrigin   bool                `yaml:"allow_missing_origin"`
	AllowNoBotDefence    bool                `yaml:"allow_no_bot_defence"`
	Limits               Limits              `yaml:"limits"`
	SuccessURL           string              `yaml:"success_url"`
	ErrorURL             string              `yaml:"error_url"`
	// Captcha overrides the service's; with the same provider, unset keys
	// are inherited.
	Captcha  *Captcha  `yaml:"captcha"`
	Template *Template `yaml:"template"`
	// FormToken, when present (even as {}), requires a signed single-use
	// token from GET /f/{form}/token issued at least MinFill before the post.
	FormToken *FormToken `yaml:"form_token"`
}

// FormToken tunes a form's signed single-use token.
type FormToken struct {
	MinFill time.Duration `yaml:"min_fill"`
	MaxAge  time.Duration `yaml:"max_age"`
}

// Limits are one form's rate limits, each "COUNT/[N]UNIT" (5/h, 30/10m).
// Global tightens the service-wide limit: the strictest wins, since there
// is one global budget.
type Limits struct {
	PerIP        Limit `yaml:"per_ip"`
	PerNetwork   Limit `yaml:"per_network"`
	PerSender    Limit `yaml:"per_sender"`
	PerRecipient Limit `yaml:"per_recipient"`
	PerForm      Limit `yaml:"per_form"`
	Global       Limit `yaml:"global"`
}
