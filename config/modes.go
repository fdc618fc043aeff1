package config

import (
	"fmt"
	"strings"

	"github.com/bccguard/bccguard/internal/lineend"
)

// The settings that take one of a few words each have a named string type,
// constants for the words, and one Parse function, so a mode is compared
// against a constant (a typo is a compile error) and each set of words is
// spelled out once, here.

// ListenerTLS is how a listener offers TLS.
type ListenerTLS string

// Listener TLS modes.
const (
	ListenerTLSNone     ListenerTLS = "none"     // plain SMTP only (the default)
	ListenerTLSStartTLS ListenerTLS = "starttls" // STARTTLS offered
	ListenerTLSImplicit ListenerTLS = "implicit" // TLS from the first byte (port 465)
)

// ParseListenerTLS checks a listener's tls setting.
func ParseListenerTLS(s string) (ListenerTLS, error) {
	return parseMode(s, ListenerTLSNone, ListenerTLSStartTLS, ListenerTLSImplicit)
}

// UpstreamTLS is how bccguard uses TLS towards the upstream.
type UpstreamTLS string

// Upstream TLS modes.
const (
	UpstreamTLSNone          UpstreamTLS = "none"          // never STARTTLS
	UpstreamTLSOpportunistic UpstreamTLS = "opportunistic" // STARTTLS when offered; plain if it fails (the default)
	UpstreamTLSRequired      UpstreamTLS = "required"      // STARTTLS with a verified certificate, or no delivery
)

// ParseUpstreamTLS checks upstream.tls.
func ParseUpstreamTLS(s string) (UpstreamTLS, error) {
	return parseMode(s, UpstreamTLSNone, UpstreamTLSOpportunistic, UpstreamTLSRequired)
}

// ParseBareNewlines checks a listener's bare_newlines setting; its modes
// are those of the reader that applies them, lineend.Mode.
func ParseBareNewlines(s string) (lineend.Mode, error) {
	return parseMode(s, lineend.Reject, lineend.Normalize)
}

// StoreBackend is the durable store of the queue, the quarantine and the
// audit log.
type StoreBackend string

// Store backends.
const (
	StoreEmbedded StoreBackend = "embedded" // one data folder, one process (the default)
	StorePostgres StoreBackend = "postgres" // one PostgreSQL database shared by several replicas
)

// ParseStoreBackend checks store.backend.
func ParseStoreBackend(s string) (StoreBackend, error) {
	return parseMode(s, StoreEmbedded, StorePostgres)
}

// ExpiryAction is what happens to a held message when its retention ends.
type ExpiryAction string

// Expiry actions.
const (
	ExpiryDelete  ExpiryAction = "delete"  // the default
	ExpiryRelease ExpiryAction = "release" // as explode, where that is safe
)

// ParseExpiryAction checks quarantine.expiry_action.
func ParseExpiryAction(s string) (ExpiryAction, error) {
	return parseMode(s, ExpiryDelete, ExpiryRelease)
}

// LogFormat is how log records are written.
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// ParseLogFormat checks log.format.
func ParseLogFormat(s string) (LogFormat, error) {
	return parseMode(s, LogText, LogJSON)
}

// LogLevel is the least severe level logged; the words are slog's.
type LogLevel string

// Log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// ParseLogLevel checks log.level.
func ParseLogLevel(s string) (LogLevel, error) {
	return parseMode(s, LogDebug, LogInfo, LogWarn, LogError)
}

// ChannelType is the kind of a notification channel.
type ChannelType string

// Notification channel types.
const (
	ChannelWebhook ChannelType = "webhook"
	ChannelEmail   ChannelType = "email"
)

// ParseChannelType checks a notify channel's type.
func ParseChannelType(s string) (ChannelType, error) {
	return parseMode(s, ChannelWebhook, ChannelEmail)
}

// WebhookFormat is the body a webhook channel posts.
type WebhookFormat string

// Webhook formats.
const (
	FormatJSON WebhookFormat = "json" // bccguard's JSON, signed
	FormatText WebhookFormat = "text" // {"text": ...}, as Slack's and Teams' incoming webhooks take it
)

// ParseWebhookFormat checks a webhook channel's format.
func ParseWebhookFormat(s string) (WebhookFormat, error) {
	return parseMode(s, FormatJSON, FormatText)
}

// DigestPeriod is how often a channel gets a digest of what is held; ""
// for none.
type DigestPeriod string

// Digest periods.
const (
	DigestHourly DigestPeriod = "hourly"
	DigestDaily  DigestPeriod = "daily"
)

// ParseDigestPeriod checks a channel's digest setting (when it is set).
func ParseDigestPeriod(s string) (DigestPeriod, error) {
	return parseMode(s, DigestHourly, DigestDaily)
}

// parseMode returns the mode spelled s, or an error that lists the words
// ("must be a, b or c, not \"d\"").
func parseMode[T ~string](s string, modes ...T) (T, error) {
	words := make([]string, len(modes))
	for i, m := range modes {
		if string(m) == s {
			return m, nil
		}
		words[i] = string(m)
	}
	list := words[len(words)-1]
	if len(words) > 1 {
		list = strings.Join(words[:len(words)-1], ", ") + " or " + list
	}
	return "", fmt.Errorf("must be %s, not %q", list, s)
}
