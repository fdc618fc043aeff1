package config

import (
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Notify configures the notifications bccguard sends about held mail: to
// security through channels (webhooks, email), and to senders through the
// rules that ask for it (notify_sender in the policy).
type Notify struct {
	// Channels are where notifications go, any number.
	Channels []NotifyChannel `yaml:"channels" item:"notify channel"`
	// RetryFirst is the delay before the first retry of a notification
	// that failed; it doubles up to RetryMax. After Lifetime it is given
	// up (counted as failed).
	RetryFirst Duration `yaml:"retry_first"`
	RetryMax   Duration `yaml:"retry_max"`
	Lifetime   Duration `yaml:"lifetime"`
	// Workers bounds the notifications being sent at once (by each
	// replica); they never take a worker from the mail.
	Workers int `yaml:"workers"`
}

// NotifyChannel is one place notifications go.
type NotifyChannel struct {
	// Name identifies the channel in metrics and logs.
	Name string `yaml:"name"`
	// Type is webhook or email.
	Type ChannelType `yaml:"type"`
	// Events are the events the channel is told of at once (default: all
	// of NotifyEvents); [] for none (a digest only).
	Events []string `yaml:"events"`
	// Digest, hourly or daily, also sends a summary of what is still held;
	// DigestAt is the time of day (UTC, HH:MM) of a daily one.
	Digest   DigestPeriod `yaml:"digest"`
	DigestAt string       `yaml:"digest_at"`

	// URL is where a webhook posts (http or https).
	URL string `yaml:"url"`
	// Format is json (bccguard's JSON, signed) or text ({"text": ...}, as
	// Slack's and Teams' incoming webhooks take it).
	Format WebhookFormat `yaml:"format"`
	// SecretFile or SecretEnv hold the key of the webhook's HMAC-SHA256
	// signature (required for json).
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
	// CAFile replaces the system's roots for verifying the webhook's
	// server certificate.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds one webhook request.
	Timeout Duration `yaml:"timeout"`

	// To is the address an email channel writes to; From is its From:
	// (default bccguard@hostname).
	To   string `yaml:"to"`
	From string `yaml:"from"`
}

// Notification events a channel can choose.
const (
	EventHeld                = "held"
	EventNeedsSecondReviewer = "needs_second_reviewer"
	EventReleased            = "released"
	EventDeleted             = "deleted"
	EventExpired             = "expired"
)

// NotifyEvents are the events a channel is told of at once, in the order
// they happen to a hold.
var NotifyEvents = []string{EventHeld, EventNeedsSecondReviewer, EventReleased, EventDeleted, EventExpired}

// SenderChannel is the channel name of notices to senders: reserved.
const SenderChannel = "sender"

// Defaults of the notify section.
const (
	DefaultNotifyRetryFirst = 30 * time.Second
	DefaultNotifyRetryMax   = 30 * time.Minute
	DefaultNotifyLifetime   = 24 * time.Hour
	DefaultNotifyWorkers    = 4
	DefaultNotifyTimeout    = 10 * time.Second
	DefaultDigestAt         = "08:00"
)

var (
	channelName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	clockTime   = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// validateNotify checks the notify section and fills in its defaults.
func (c *Config) validateNotify() []error {
	var errs []error
	add := func(path []any, format string, args ...any) { errs = append(errs, c.errf(path, format, args...)) }
	p := func(x ...any) []any { return append([]any{"notify"}, x...) }
	n := &c.Notify
	if n.RetryFirst == 0 {
		n.RetryFirst = Duration(DefaultNotifyRetryFirst)
	}
	if n.RetryMax == 0 {
		n.RetryMax = Duration(max(DefaultNotifyRetryMax, n.RetryFirst.D()))
	}
	if n.Lifetime == 0 {
		n.Lifetime = Duration(DefaultNotifyLifetime)
	}
	if n.Workers == 0 {
		n.Workers = DefaultNotifyWorkers
	}
	if n.RetryMax < n.RetryFirst || n.Lifetime <= 0 {
		add(p(), "notify: need retry_first <= retry_max and lifetime > 0")
	}
	if n.Workers < 1 || n.Workers > 100 {
		add(p("workers"), "notify.workers must be between 1 and 100")
	}
	names := map[string]bool{}
	for i := range n.Channels {
		ch := &n.Channels[i]
		at := func(k ...any) []any { return p(append([]any{"channels", i}, k...)...) }
		what := ch.Name
		switch {
		case !channelName.MatchString(ch.Name):
			add(at("name"), "notify channel %d: name %q: use lower-case letters, digits, '_' and '-' (it is a metric label)", i+1, ch.Name)
			what = "channel " + strconv.Itoa(i+1)
		case ch.Name == SenderChannel:
			add(at("name"), "notify channel name %q is reserved for the notices to senders", ch.Name)
		case names[ch.Name]:
			add(at("name"), "notify channel name %q is used twice", ch.Name)
		}
		names[ch.Name] = true
		if ch.Events == nil {
			ch.Events = slices.Clone(NotifyEvents)
		}
		for j, e := range ch.Events {
			if !slices.Contains(NotifyEvents, e) {
				add(at("events", j), "notify %s: unknown event %q: expected %s (a digest is set with digest:)", what, e, strings.Join(NotifyEvents, ", "))
			}
		}
		if ch.Digest != "" {
			if _, err := ParseDigestPeriod(string(ch.Digest)); err != nil {
				add(at("digest"), "notify %s: digest %v", what, err)
			}
		}
		if ch.Digest == DigestDaily && ch.DigestAt == "" {
			ch.DigestAt = DefaultDigestAt
		}
		if ch.DigestAt != "" && (ch.Digest != DigestDaily || !clockTime.MatchString(ch.DigestAt)) {
			add(at("digest_at"), "notify %s: digest_at is the time of day of a daily digest, as HH:MM (UTC)", what)
		}
		if len(ch.Events) == 0 && ch.Digest == "" {
			add(at("events"), "notify %s: no events and no digest: the channel would never be told anything", what)
		}
		for _, f := range c.channelFields(ch) {
			if f.val != "" {
				add(at(f.key), "notify %s: %s is for channels of type %s", what, f.key, f.typ)
			}
		}
		switch ch.Type {
		case ChannelWebhook:
			u, err := url.Parse(ch.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(at("url"), "notify %s: url %q: expected an http(s) URL", what, ch.URL)
			}
			if ch.Format == "" {
				ch.Format = FormatJSON
			}
			if _, err := ParseWebhookFormat(string(ch.Format)); err != nil {
				add(at("format"), "notify %s: format %v (text is for Slack/Teams)", what, err)
			}
			if ch.SecretFile != "" && ch.SecretEnv != "" {
				add(at("secret_env"), "notify %s: give the secret with secret_file or secret_env, not both", what)
			}
			if ch.Format == FormatJSON && ch.SecretFile == "" && ch.SecretEnv == "" {
				add(at("type"), "notify %s: a json webhook is signed: it needs secret_file or secret_env", what)
			}
			if ch.Timeout == 0 {
				ch.Timeout = Duration(DefaultNotifyTimeout)
			}
			if ch.Timeout < 0 || ch.Timeout.D() > 5*time.Minute {
				add(at("timeout"), "notify %s: timeout must be between 0 and 5m", what)
			}
		case ChannelEmail:
			if a, err := mail.ParseAddress(ch.To); err != nil || a.Name != "" {
				add(at("to"), "notify %s: to %q: expected one address such as security@example.com", what, ch.To)
			}
			if ch.From == "" {
				ch.From = "bccguard@" + c.Hostname
			}
			if a, err := mail.ParseAddress(ch.From); err != nil || a.Name != "" {
				add(at("from"), "notify %s: from %q: expected one address", what, ch.From)
			}
		default:
			_, err := ParseChannelType(string(ch.Type))
			add(at("type"), "notify %s: type %v", what, err)
		}
	}
	return errs
}

type channelField struct {
	key, val string
	typ      ChannelType
}

// channelFields are the keys of one channel type, set on a channel of the
// other type.
func (c *Config) channelFields(ch *NotifyChannel) []channelField {
	web := []channelField{{"url", ch.URL, ChannelWebhook}, {"format", string(ch.Format), ChannelWebhook},
		{"secret_file", ch.SecretFile, ChannelWebhook}, {"secret_env", ch.SecretEnv, ChannelWebhook},
		{"ca_file", ch.CAFile, ChannelWebhook}}
	if ch.Timeout != 0 {
		web = append(web, channelField{"timeout", "set", ChannelWebhook})
	}
	email := []channelField{{"to", ch.To, ChannelEmail}, {"from", ch.From, ChannelEmail}}
	switch ch.Type {
	case ChannelWebhook:
		return email
	case ChannelEmail:
		return web
	}
	return nil
}
