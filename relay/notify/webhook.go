package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bccguard/bccguard/config"
)

// Headers of a webhook request.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" of
	// "<t>.<body>", keyed with the channel's secret, as Stripe signs.
	SignatureHeader = "X-Bccguard-Signature"
	// EventHeader and IDHeader repeat the body's event and id, so a
	// receiver can route and deduplicate before it parses.
	EventHeader = "X-Bccguard-Event"
	IDHeader    = "X-Bccguard-Id"
)

// Sign returns the signature header value of body at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a signature header against body, as a receiver should: the
// HMAC in constant time, and a timestamp no further than tolerance from
// now (against replays).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp is %v away from now", d.Round(time.Second))
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return errors.New("signature does not match")
}

// webhook posts events to one URL.
type webhook struct {
	name   string
	url    string
	format config.WebhookFormat
	secret []byte
	client *http.Client
}

func newWebhook(ch config.NotifyChannel) (*webhook, error) {
	w := &webhook{name: ch.Name, url: ch.URL, format: ch.Format}
	var err error
	switch {
	case ch.SecretFile != "":
		var b []byte
		if b, err = os.ReadFile(ch.SecretFile); err == nil {
			w.secret = []byte(strings.TrimRight(string(b), "\r\n"))
		}
	case ch.SecretEnv != "":
		w.secret = []byte(os.Getenv(ch.SecretEnv))
		if len(w.secret) == 0 {
			err = fmt.Errorf("environment variable %s is empty", ch.SecretEnv)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("notify channel %s: secret: %w", ch.Name, err)
	}
	if ch.SecretFile != "" && len(w.secret) == 0 {
		return nil, fmt.Errorf("notify channel %s: secret file %s is empty", ch.Name, ch.SecretFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if ch.CAFile != "" {
		pem, err := os.ReadFile(ch.CAFile)
		if err != nil {
			return nil, fmt.Errorf("notify channel %s: ca_file: %w", ch.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("notify channel %s: ca_file %s: no PEM certificates", ch.Name, ch.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	w.client = &http.Client{
		Transport: tr,
		Timeout:   ch.Timeout.D(),
		// A redirect is a failure: the receiver is misconfigured, and the
		// signed body must not be replayed to wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

// body is what the webhook posts for ev.
func (w *webhook) body(ev *Event) ([]byte, error) {
	if w.format == config.FormatText {
		text := summary(ev)
		if ev.Link != "" {
			text += " " + ev.Link
		}
		if ev.Event == EventDigest {
			text = strings.TrimSpace(details(ev))
		}
		return json.Marshal(map[string]string{"text": text})
	}
	return json.Marshal(ev)
}

// send posts ev. Any answer but 2xx is a failure to retry: receivers are
// often briefly down or rate-limited, and a notification must arrive.
func (w *webhook) send(ctx context.Context, ev *Event, now time.Time) error {
	body, err := w.body(ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bccguard-notify")
	req.Header.Set(EventHeader, ev.Event)
	req.Header.Set(IDHeader, ev.ID)
	if len(w.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.secret, now, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// A little of the answer helps the operator; more is not read.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	msg := SafeText(string(snippet), 200)
	if msg != "" {
		msg = ": " + msg
	}
	return fmt.Errorf("HTTP %s%s", resp.Status, msg)
}
