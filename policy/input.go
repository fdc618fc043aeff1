package policy

import (
	"bytes"
	"net/netip"

	"github.com/bccguard/bccguard/internal/lineend"
	"github.com/bccguard/bccguard/internal/mailhdr"
)

// Input is what the relay saw of one message, handed to the policy at the
// end of DATA. The relay fills it as the message arrives: client and
// envelope from the session, Header from the spooled header block, Body
// from the Scanner the message was teed into.
type Input struct {
	// Listener is the name of the listener the message came in on.
	Listener string
	ClientIP netip.Addr
	// User is the SMTP AUTH identity, empty if the client did not log in.
	User       string
	Sender     string
	Recipients []string
	Size       int64
	// Header is the raw header block as received (without bccguard's
	// Received: field).
	Header []byte
	// Visible is what the header shows. Evaluate fills it in (reading
	// Header once), so that a caller that also stores it with a held
	// message reads it from here; a Visible worked out for another policy
	// or envelope is counted again from the same reading.
	Visible *Visible
	// Body is the Scanner's result for the whole message.
	Body ScanResult
	// Watch is the watch list the Scanner was given: Body.RecipientsShown
	// indexes it.
	Watch Watch
	// DKIM is what the relay found about signatures; zero (nothing valid,
	// cannot sign) where nothing verifies or signs, as in `policy test`.
	DKIM DKIM
	// Counts are the client's recent messages and recipients, this one
	// included (zero unless the relay counts them: UsesClientCounts).
	Counts ClientCounts
}

// DKIM is the signature side of a message: the incoming signatures the
// relay verified and whether it can sign the copies it rewrites, so a
// policy can hold mail it could not deliver with a valid signature.
type DKIM struct {
	// Valid is set when at least one incoming signature verified.
	Valid bool
	// Domains are the d= domains of the signatures that verified,
	// lowercased and sorted.
	Domains []string
	// CanSign is set when bccguard has a key for the From: domain, a
	// parent of it or the fallback domain.
	CanSign bool
}

// Envelope is the SMTP envelope of a message given to BuildInput.
type Envelope struct {
	// Sender is MAIL FROM; empty means "take it from the From: field".
	Sender string
	// Recipients are the RCPT TO addresses; none means "take them from
	// the addressee fields (To:, Cc:, Bcc:, ...)".
	Recipients []string
}

// Client is the SMTP client of a message given to BuildInput.
type Client struct {
	Listener string
	IP       netip.Addr
	User     string
}

// BuildInput makes the Input for a whole message held in memory, as
// `bccguard policy test` and tests have it: header block, body scan, and
// the envelope from env or, where env leaves it empty, from the headers.
// The scan uses the default content settings; Policy.BuildInput uses the
// policy's.
func BuildInput(raw []byte, env Envelope, client Client) *Input {
	return buildInput(raw, env, client, ScanOptions{})
}

// BuildInput is the package's BuildInput with the policy's content
// settings (phone region, bounds).
func (p *Policy) BuildInput(raw []byte, env Envelope, client Client) *Input {
	return buildInput(raw, env, client, p.ScanOptions())
}

func buildInput(raw []byte, env Envelope, client Client, opts ScanOptions) *Input {
	// A file's line ends (LF on disk, a bare CR hiding a Cc: in a
	// Subject:) are read as a listener with bare_newlines: normalize
	// passes them on: every bare CR and LF ends a line. (With the default,
	// reject, the relay refuses such a message instead.)
	raw, _ = lineend.Normalized(raw)
	hdr := HeaderBlock(raw)
	in := &Input{
		Listener:   client.Listener,
		ClientIP:   client.IP,
		User:       client.User,
		Sender:     env.Sender,
		Recipients: env.Recipients,
		Size:       int64(len(raw)),
		Header:     hdr,
	}
	if in.Sender == "" || len(in.Recipients) == 0 {
		h := mailhdr.Read(hdr)
		if in.Sender == "" {
			if from := h.Authors(); len(from) > 0 {
				in.Sender = from[0].Addr
			}
		}
		if len(in.Recipients) == 0 {
			for _, who := range h.People("", nil).List {
				if who.Addr != "" && who.Addressee {
					in.Recipients = append(in.Recipients, who.Addr)
				}
			}
		}
	}
	h := ParseVisible(hdr, nil)
	opts.Watch = NewWatch(in.Recipients, &h)
	in.Watch = opts.Watch
	sc := NewScanner(opts)
	sc.Write(raw)
	sc.Close()
	in.Body = sc.Result()
	return in
}

// HeaderBlock returns the header block of a raw message, up to and
// including the blank line that ends it (all of raw if there is none).
func HeaderBlock(raw []byte) []byte {
	if bytes.HasPrefix(raw, []byte("\r\n")) {
		return raw[:2]
	}
	if bytes.HasPrefix(raw, []byte("\n")) {
		return raw[:1]
	}
	crlf := bytes.Index(raw, []byte("\r\n\r\n"))
	lf := bytes.Index(raw, []byte("\n\n"))
	switch {
	case crlf >= 0 && (lf < 0 || crlf < lf):
		return raw[:crlf+4]
	case lf >= 0:
		return raw[:lf+2]
	}
	return raw
}
