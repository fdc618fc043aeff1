// Package dsn writes the delivery status notifications (RFC 3464) that
// bccguard sends to a message's envelope sender when a delivery bounces or
// expires: a multipart/report with a short explanation for people, the
// machine-readable message/delivery-status, and the original message or its
// header. Send the result with an empty reverse-path (MAIL FROM:<>) so that
// a DSN can never bounce back.
package dsn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Report describes one DSN: the message it is about and the recipients
// whose delivery failed or is delayed.
type Report struct {
	ReportingMTA string    // this relay's host name, for Reporting-MTA and the text
	ArrivalDate  time.Time // when the message was accepted; zero leaves out Arrival-Date
	EnvID        string    // the ENVID parameter of MAIL FROM, xtext-decoded; "" if none
	Ret          string    // the RET parameter: "FULL", "HDRS" or "" (full message)
	From         string    // the DSN's From: address, e.g. "MAILER-DAEMON@relay.example.com"
	To           string    // the original envelope sender, who gets the DSN
	QueueID      string    // bccguard's ID for the message, to quote to support
	// Explanation, when set, says in a sentence why, for people (a
	// deletion by an operator has no receiving server's reply to quote).
	Explanation string
	Recipients  []RecipientStatus

	// Date, MessageID and Boundary default to now, a random Message-ID at
	// ReportingMTA and a random boundary; tests fix them.
	Date      time.Time
	MessageID string // without angle brackets
	Boundary  string
}

// RecipientStatus is the outcome for one recipient.
type RecipientStatus struct {
	Addr           string    // the envelope recipient, for Final-Recipient
	ORcpt          string    // the ORCPT parameter, "rfc822;addr" or a bare address; "" if none
	Action         string    // "failed" or "delayed" ("delivered", "relayed", "expanded" also pass)
	Status         string    // RFC 3463 code such as "5.1.1"; "" gives 5.0.0 or 4.0.0 by Action
	DiagnosticCode string    // e.g. "smtp; 550 5.1.1 user unknown"; "smtp; " is added if no type is given
	RemoteMTA      string    // the upstream host name; "dns; " is added if no type is given
	LastAttempt    time.Time // zero leaves out Last-Attempt-Date
	WillRetryUntil time.Time // for delayed recipients: when retries stop; zero leaves it out
}

const (
	dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700" // RFC 5322, as go-message writes Date
	maxValue   = 900                               // bytes per field value; keeps every line under 998
	maxHeader  = 256 << 10                         // bytes of header block returned for RET=HDRS
)

var (
	statusRe = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)
	typeRe   = regexp.MustCompile(`^[A-Za-z0-9-]+;`)
)

// Write streams the DSN for r to w, with CRLF line endings. original is the
// message as received; it is copied through byte for byte, never held in
// memory, and for RET=HDRS only its header block is read. A nil original
// leaves out the third part, which RFC 3464 allows. A returned message with
// 8-bit content makes the DSN 8-bit too: send it with BODY=8BITMIME.
func Write(w io.Writer, r Report, original io.Reader) error {
	r.Recipients = slices.Clone(r.Recipients) // check normalizes them; the caller's stay as they were
	if err := r.check(); err != nil {
		return err
	}
	if r.Date.IsZero() {
		r.Date = time.Now()
	}
	if r.MessageID == "" {
		var h gomail.Header
		if err := h.GenerateMessageIDWithHostname(clean(r.ReportingMTA)); err != nil {
			return err
		}
		r.MessageID, _ = h.MessageID()
	}
	mp := textproto.NewMultipartWriter(io.Discard)
	if r.Boundary == "" {
		// "=_" never occurs in quoted-printable text, so no line of the
		// text part can look like a delimiter.
		r.Boundary = "=_bccguard_" + mp.Boundary()[:48]
	}
	// go-message ignores a bad boundary and silently uses a random one,
	// which would not match the Content-Type written: check it here.
	if err := mp.SetBoundary(r.Boundary); err != nil {
		return fmt.Errorf("dsn: boundary %q: %w", r.Boundary, err)
	}

	bw := bufio.NewWriter(w)
	mw, err := message.CreateWriter(bw, newHeader(
		"From", (&gomail.Address{Name: "Mail Delivery System", Address: clean(r.From)}).String(),
		"To", (&gomail.Address{Address: clean(r.To)}).String(),
		"Subject", r.subject(),
		"Date", r.Date.Format(dateLayout),
		"Message-ID", "<"+clean(r.MessageID)+">",
		"Auto-Submitted", "auto-replied",
		"MIME-Version", "1.0",
		"Content-Type", `multipart/report; report-type=delivery-status; boundary="`+r.Boundary+`"`,
	))
	if err != nil {
		return err
	}

	part, err := mw.CreatePart(newHeader(
		"Content-Type", "text/plain; charset=utf-8",
		"Content-Transfer-Encoding", "quoted-printable",
		"Content-Description", "Notification",
	))
	if err != nil {
		return err
	}
	if err := r.writeText(part, original != nil); err != nil {
		return err
	}
	if err := part.Close(); err != nil { // flushes quoted-printable
		return err
	}

	part, err = mw.CreatePart(newHeader(
		"Content-Type", "message/delivery-status",
		"Content-Description", "Delivery report",
	))
	if err != nil {
		return err
	}
	if err := r.writeStatus(part); err != nil {
		return err
	}

	if original != nil {
		if err := r.writeOriginal(mw, original); err != nil {
			return fmt.Errorf("dsn: copying the original message: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// writeOriginal adds the third part: the whole message, or for RET=HDRS
// its header block. It has no Content-Transfer-Encoding on purpose: for
// 7bit/8bit go-message would wrap long lines and so change the message.
func (r *Report) writeOriginal(mw *message.Writer, original io.Reader) error {
	if strings.EqualFold(r.Ret, "HDRS") {
		part, err := mw.CreatePart(newHeader(
			"Content-Type", "text/rfc822-headers",
			"Content-Description", "Original message header",
		))
		if err != nil {
			return err
		}
		return copyHeader(part, original)
	}
	part, err := mw.CreatePart(newHeader(
		"Content-Type", "message/rfc822",
		"Content-Description", "Original message",
	))
	if err != nil {
		return err
	}
	_, err = io.Copy(part, original)
	return err
}

func (r *Report) check() error {
	switch {
	case clean(r.ReportingMTA) == "":
		return errors.New("dsn: no reporting MTA host name")
	case !strings.Contains(r.From, "@"):
		return fmt.Errorf("dsn: From %q is not an address", clean(r.From))
	case !strings.Contains(r.To, "@"):
		// Also catches the null reverse-path: a DSN is never sent to <>.
		return fmt.Errorf("dsn: no envelope sender to notify (%q)", clean(r.To))
	case len(r.Recipients) == 0:
		return errors.New("dsn: no recipients to report")
	}
	switch strings.ToUpper(r.Ret) {
	case "", "FULL", "HDRS":
	default:
		return fmt.Errorf("dsn: RET %q is neither FULL nor HDRS", clean(r.Ret))
	}
	for i := range r.Recipients {
		rs := &r.Recipients[i]
		if clean(rs.Addr) == "" {
			return fmt.Errorf("dsn: recipient %d has no address", i)
		}
		var class byte
		switch rs.Action = strings.ToLower(rs.Action); rs.Action {
		case "failed":
			class = '5'
		case "delayed":
			class = '4'
		case "delivered", "relayed", "expanded":
			class = '2'
		default:
			return fmt.Errorf("dsn: recipient %d: unknown action %q", i, clean(rs.Action))
		}
		if rs.Status == "" {
			rs.Status = string(class) + ".0.0"
		}
		// An expired delivery fails with the last temporary status (4.x.x).
		if !statusRe.MatchString(rs.Status) || (rs.Status[0] != class && !(class == '5' && rs.Status[0] == '4')) {
			return fmt.Errorf("dsn: recipient %d: status %q does not fit action %q", i, clean(rs.Status), rs.Action)
		}
	}
	return nil
}

func (r *Report) failed() bool {
	for _, rs := range r.Recipients {
		if rs.Action == "failed" {
			return true
		}
	}
	return false
}

func (r *Report) subject() string {
	if r.failed() {
		return "Undelivered Mail Returned to Sender"
	}
	return "Delayed Mail (still being retried)"
}

// writeStatus writes the message/delivery-status body: the per-message
// block, then one block per recipient, each ending in a blank line.
func (r *Report) writeStatus(w io.Writer) error {
	var b strings.Builder
	field := func(name, value string) {
		if value != "" {
			b.WriteString(formatField(name, value))
		}
	}
	date := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(dateLayout)
	}
	field("Original-Envelope-Id", clean(r.EnvID))
	field("Reporting-MTA", "dns; "+clean(r.ReportingMTA))
	field("Arrival-Date", date(r.ArrivalDate))
	field("X-Bccguard-Queue-ID", clean(r.QueueID))
	for _, rs := range r.Recipients {
		b.WriteString("\r\n")
		if orcpt := clean(rs.ORcpt); orcpt != "" {
			field("Original-Recipient", typed(orcpt, "rfc822"))
		}
		field("Final-Recipient", "rfc822; "+clean(rs.Addr))
		field("Action", rs.Action)
		field("Status", rs.Status)
		if mta := clean(rs.RemoteMTA); mta != "" {
			field("Remote-MTA", typed(mta, "dns"))
		}
		if diag := clean(rs.DiagnosticCode); diag != "" {
			field("Diagnostic-Code", typed(diag, "smtp"))
		}
		field("Last-Attempt-Date", date(rs.LastAttempt))
		field("Will-Retry-Until", date(rs.WillRetryUntil))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeText writes the part for people: what failed, why, what to do.
// The quoted-printable writer turns its "\n" into CRLF.
func (r *Report) writeText(w io.Writer, attached bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail relay at %s.\n\n", clean(r.ReportingMTA))
	if r.failed() {
		b.WriteString("Your message could not be delivered to the recipients below.\n")
		if e := clean(r.Explanation); e != "" {
			b.WriteString(e + "\n")
		}
	} else {
		b.WriteString("Your message has not been delivered yet to the recipients below.\n" +
			"It is still being retried: you do not need to send it again.\n")
	}
	for _, rs := range r.Recipients {
		fmt.Fprintf(&b, "\n<%s>: delivery %s (%s)\n", clean(rs.Addr), rs.Action, rs.Status)
		if diag := clean(rs.DiagnosticCode); diag != "" {
			if typeRe.MatchString(diag) {
				_, diag, _ = strings.Cut(diag, ";")
			}
			fmt.Fprintf(&b, "    The receiving server said: %s\n", strings.TrimSpace(diag))
		}
		if a := advice(rs); a != "" {
			fmt.Fprintf(&b, "    %s\n", a)
		}
	}
	if attached {
		if strings.EqualFold(r.Ret, "HDRS") {
			b.WriteString("\nThe header of your message is attached.\n")
		} else {
			b.WriteString("\nYour message is attached.\n")
		}
	}
	b.WriteString("\nIf you need help, forward this report to your mail administrator")
	if q := clean(r.QueueID); q != "" {
		fmt.Fprintf(&b, "\nand mention queue ID %s", q)
	}
	b.WriteString(".\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// advice says what the sender can do about a recipient's status.
func advice(rs RecipientStatus) string {
	switch {
	case rs.Action == "delayed" && !rs.WillRetryUntil.IsZero():
		return "Delivery will be retried until " + rs.WillRetryUntil.Format(dateLayout) + "."
	case rs.Action == "delayed":
		return "Delivery will be retried."
	case rs.Action != "failed":
		return ""
	case rs.Status[0] == '4':
		return "The receiving server kept refusing it for a temporary reason until the message expired; you can send it again later."
	case strings.HasPrefix(rs.Status, "5.1."):
		return "Check the address for typing errors."
	case rs.Status == "5.2.2":
		return "The recipient's mailbox is full; try again later or reach them another way."
	case rs.Status == "5.2.3", rs.Status == "5.3.4":
		return "The message is too large for the receiving system; send a smaller one."
	case strings.HasPrefix(rs.Status, "5.7."):
		return "The receiving system refused it by its policy; ask your mail administrator."
	}
	return "Ask your mail administrator if the problem persists."
}
