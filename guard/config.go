package guard

import (
	"github.com/formguard/formguard/post"
	"log/slog"
	"net/http"
	"time"

	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/ratelimit"
)

// Defaults, as named constants so docs and code cannot disagree.
const (
	DefaultMaxBody          = 64 << 10 // bytes of request body
	DefaultMaxFileBody      = 10 << 20 // bytes, for forms with AllowFiles
	DefaultMaxName          = 100      // runes
	DefaultMaxSubject       = 200      // runes
	DefaultMaxMessage       = 5000     // runes (contact)
	DefaultMaxShareMessage  = 500      // runes (the visitor's note on a share form)
	DefaultMaxRecipients    = 1        // share forms
	DefaultContactLinks     = 3        // links allowed in a contact message
	DefaultShareLinks       = 0        // links allowed in a share note
	DefaultChoiceField      = "department"
	DefaultMaxFields        = 32 // distinct fields in one submission
	DefaultHoneypotField    = "_gotcha"
	MaxEmailLength          = 254 // RFC 5321 4.5.3.1.3 path limit less the angle brackets
	MaxLocalPartLength      = 64  // RFC 5321 4.5.3.1.1
	MaxDomainLength         = 255 // RFC 5321 4.5.3.1.2
	DefaultRedirectFieldKey = "_next"
)

// Default rate limits, sensible for a small site. Override per form.
var (
	DefaultPerIP        = ratelimit.Limit{Count: 5, Period: time.Hour}
	DefaultPerNetwork   = ratelimit.Limit{Count: 30, Period: time.Hour}
	DefaultPerSender    = ratelimit.Limit{Count: 3, Period: time.Hour}
	DefaultPerRecipient = ratelimit.Limit{Count: 2, Period: 24 * time.Hour}
	DefaultPerForm      = ratelimit.Limit{Count: 100, Period: time.Hour}
	DefaultGlobal       = ratelimit.Limit{Count: 500, Period: time.Hour}
)

// Config configures a Guard. Every field documents its zero-value default;
// the zero value of every security setting is the safe one.
type Config struct {
	// Domain is the site's mail domain (required). Contact recipients and
	// share URLs are judged against the site, never against the visitor.
	Domain string
	// Origins are the allowed scheme://host[:port] origins for Origin and
	// Referer checks and for shared URLs (required, at least one).
	Origins []string
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed. Zero
	// value: none; the client IP is RemoteAddr.
	TrustedProxies []string
	// Forms maps a form's name (as in /f/{name}) to its policy (required).
	Forms map[string]Form
	// Store decides rate limits. Zero value: a ratelimit.Memory store that
	// the Guard owns and closes in Close.
	Store ratelimit.Store
	// Global is the limit across all forms. Zero value: DefaultGlobal.
	Global ratelimit.Limit
	// KeySecret keys the hash of client IPs and addresses used as rate-limit
	// keys and in logs. Zero value: a random per-process secret (fine for a
	// single instance with the memory store; set it when sharing Redis).
	KeySecret []byte
	// Now is the clock. Zero value: time.Now.
	Now func() time.Time
	// Logger receives one line per decision; repeats of one client's same
	// refusal are sampled and summarised with a count (Stats has the
	// totals). Zero value: slog.Default().
	Logger *slog.Logger
	// ErrorHandler writes rejections in Middleware. Zero value: WriteError,
	// which answers problem+json, a same-site 303 redirect or a small page.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err *Error)
	// SuccessHandler writes the answer for honeypot hits in Middleware (which
	// must look like success). Zero value: WriteSuccess.
	SuccessHandler func(w http.ResponseWriter, r *http.Request, s *post.Submission)
}

// FieldNames renames the fields a form reads. Zero value: the defaults.
type FieldNames struct {
	Name    string // default "name"
	Email   string // default "email"
	Subject string // default "subject"
	Message string // default "message"
	To      string // default "to" (share forms)
	URL     string // default "url" (share forms; only scheme, host and path are kept, see post.Submission)
}

// Limits are a form's rate limits. A zero Limit takes the package default;
// to lift a tier set it to a very large limit, never to zero.
type Limits struct {
	PerIP        ratelimit.Limit // per client IPv4 / IPv6 /64
	PerNetwork   ratelimit.Limit // per IPv4 /24 / IPv6 /48, so one allocation cannot rotate addresses
	PerSender    ratelimit.Limit // per visitor Reply-To address
	PerRecipient ratelimit.Limit // per recipient address (share forms)
	PerForm      ratelimit.Limit // all submissions to this form
}

// Form is one form's policy.
type Form struct {
	// Kind is contact (zero value) or share.
	Kind post.Kind
	// To are a contact form's fixed recipients (config only).
	To []string
	// Choices are named recipient lists a contact form's visitor may pick
	// from with ChoiceField (e.g. "sales" → sales@site). Zero value: none.
	Choices map[string][]string
	// ChoiceField names the field choosing among Choices. Zero value:
	// DefaultChoiceField.
	ChoiceField string
	// MaxRecipients caps a share form's visitor recipients; more is refused,
	// never truncated. Zero value: DefaultMaxRecipients.
	MaxRecipients int
	// RecipientDomains, when set, are the only domains a share form may send
	// to (a suffix match on whole labels, against the recipient's normalised
	// domain: lower-case, punycode, no trailing dot). Zero value: any domain.
	RecipientDomains []string
	// DenyRecipientDomains are domains a share form never sends to. The site
	// domain itself and its subdomains are always denied for share forms.
	DenyRecipientDomains []string
	// Fields renames the standard fields.
	Fields FieldNames
	// ExtraFields are additional single-line fields copied into
	// Submission.Fields (e.g. "phone"). Zero value: none; unknown fields are
	// refused.
	ExtraFields []string
	// RequireEmail makes the visitor's address mandatory. Zero value: contact
	// forms require it, share forms make it optional.
	RequireEmail bool
	// MaxName, MaxSubject, MaxMessage cap lengths in runes. Zero value:
	// the Default* constants (share messages: DefaultMaxShareMessage).
	MaxName, MaxSubject, MaxMessage int
	// MaxLinks caps links in the message. Zero value: the kind's default
	// (DefaultContactLinks / DefaultShareLinks); negative: no links at all.
	MaxLinks int
	// MaxBody caps the request body in bytes. Zero value: DefaultMaxBody.
	MaxBody int64
	// AllowFiles lets multipart posts carry file parts (the files are not
	// mailed by the guard; they are left to the wrapped handler).
	AllowFiles bool
	// AllowMissingOrigin accepts posts with neither Origin nor Referer
	// (non-browser clients). Zero value: refused (fail closed).
	AllowMissingOrigin bool
	// Limits are the form's rate limits.
	Limits Limits
	// SuccessURL and ErrorURL are same-site pages a plain HTML post is
	// redirected to (303). Zero value: a small built-in page.
	SuccessURL, ErrorURL string
	// Captcha verifies a CAPTCHA or proof-of-work token. Zero value: none.
	Captcha captcha.Verifier
	// Token verifies the signed single-use form token. Zero value: none.
	Token captcha.Verifier
	// AllowNoBotDefence lets a share form run without Captcha or Token.
	// Zero value: refused at New, since an unprotected share form is an
	// open relay for anything a template can carry.
	AllowNoBotDefence bool
}
