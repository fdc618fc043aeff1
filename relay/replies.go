package relay

import (
	"errors"
	"fmt"
	"net"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/lineend"
	"github.com/bccguard/bccguard/internal/oneline"
	"github.com/bccguard/bccguard/internal/smtpaddr"
	"github.com/bccguard/bccguard/relay/limit"
	"github.com/bccguard/bccguard/relay/store"
)

// The replies bccguard gives. They live in one place so codes stay stable
// and no internal error text ever reaches a client.
var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required"}
	errRelayDenied = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Relay access denied: this network may not relay and this listener offers no AUTH"}
	errHeaderTooBig = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: "Message header block too big for this relay"}
	// A bare CR or LF in DATA or BDAT where the listener's bare_newlines
	// is reject: refused at the end of the data, as Postfix's
	// smtpd_forbid_bare_newline = reject does; the session goes on.
	errBareCR = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Message refused: it contains a bare CR (a carriage return not followed by a line feed); SMTP lines must end in CRLF (RFC 5321 2.3.8)"}
	errBareLF = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Message refused: it contains a bare LF (a line feed not after a carriage return); SMTP lines must end in CRLF (RFC 5321 2.3.8)"}
	errTooManyRcpts = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3},
		Message: "Too many recipients"}
	errDataTimeout = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2},
		Message: "Timeout during data transfer, closing connection; please try again"}
	errDataBroken = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 0},
		Message: "Error reading data, closing connection; please try again"}
	errNoSpace = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
		Message: "Insufficient system storage, please try again later"}
	errTemporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Temporary local error, please try again later"}
	errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2},
		Message: "Service shutting down, please try again later"}
	errTooManyAuthFailures = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: "Too many failed authentication attempts, closing connection"}
	errUTF8Needed = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
		Message: "Non-ASCII address needs the SMTPUTF8 parameter"}
	// RFC 5321 3.3: MAIL inside a transaction is out of sequence (Postfix
	// answers the same); RSET or the end of DATA closes one.
	errNestedMail = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1},
		Message: "Nested MAIL command: send RSET first"}
)

// rateLimitReply is the reply to a transaction a rate limit refuses: at
// MAIL FROM 451 4.7.0, at RCPT TO 452 4.5.3 for that recipient (RFC 5321
// 4.5.3.1.10: the client sends the others and retries this one later). A
// failure to check the limits is a 451 too: mail is never let through
// unlimited, and the client retries. The limit's name helps the CRM's
// operator; the counts stay in the log.
func rateLimitReply(err error) *smtp.SMTPError {
	var e *limit.Exceeded
	switch {
	case errors.As(err, &e) && e.Recipients:
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3},
			Message: oneline.ASCII("Too many recipients for now (rate limit "+e.Limit+"), please try this one again later", 200)}
	case errors.As(err, &e):
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
			Message: oneline.ASCII("Too many messages for now (rate limit "+e.Limit+"), please try again later", 200)}
	}
	return errRateUnavailable
}

var errRateUnavailable = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
	Message: "Rate limits cannot be checked now, please try again later"}

// lineTooLong is the reply to a message with a line over max_line_length,
// at the end of the data (so the session goes on). RFC 5321 4.5.3.1.6
// allows a server to refuse text lines over 1000 octets.
func lineTooLong(max int) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: fmt.Sprintf("Message refused: a line is longer than %d octets; wrap long lines (RFC 5322 allows 998)", max)}
}

// badAddress is the reply to a MAIL FROM or RCPT TO address smtpaddr
// refused: 553 (mailbox name not allowed) with 5.1.7 for the sender and
// 5.1.3 for a recipient, and the reason, which never repeats the address.
func badAddress(err error, sender bool) *smtp.SMTPError {
	if errors.Is(err, smtpaddr.ErrNeedsSMTPUTF8) {
		return errUTF8Needed
	}
	reason := "invalid address"
	var ae *smtpaddr.Error
	if errors.As(err, &ae) {
		reason = ae.Reason
	}
	if sender {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Bad sender address syntax: " + reason}
	}
	return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax: " + reason}
}

// maxAuthFailures is how many failed AUTH attempts one connection gets.
const maxAuthFailures = 3

// maxCommandLine bounds an SMTP command line, CRLF included: a longer one
// gets go-smtp's 500 and the connection closes. RFC 5321 4.5.3.1.4 sets 512
// octets and lets extensions add to it (SMTPUTF8 paths, DSN parameters).
const maxCommandLine = 4096

// replyFor maps an error from the data path to the SMTP reply the client
// gets, and says whether the connection must be closed after it. Internal
// errors become a generic 451: their text is logged, never sent.
func replyFor(err error) (*smtp.SMTPError, bool) {
	var se *smtp.SMTPError
	var ne net.Error
	var tl *lineend.LineTooLongError
	switch {
	case err == nil:
		return nil, false
	case errors.Is(err, lineend.ErrBareCR):
		return errBareCR, false
	case errors.Is(err, lineend.ErrBareLF):
		return errBareLF, false
	case errors.As(err, &tl):
		return lineTooLong(tl.Max), false
	case errors.Is(err, errDataTimeout), errors.As(err, &ne) && ne.Timeout():
		return errDataTimeout, true
	case errors.Is(err, smtp.ErrDataReset):
		return errDataBroken, true
	case errors.Is(err, store.ErrNoSpace):
		return errNoSpace, false
	case errors.Is(err, store.ErrInvalidPlan):
		// The copies are bccguard's own plan: a client that retries
		// later reaches a fixed relay, where a 5xx would drop its mail.
		return errTemporary, false
	case errors.As(err, &se):
		return se, false
	case errors.Is(err, errReadFailed):
		return errDataBroken, true
	}
	return errTemporary, false
}

// errReadFailed wraps any failure to read the client's data stream.
var errReadFailed = errors.New("reading message data")

func readErr(err error) error {
	var tl *lineend.LineTooLongError
	if errors.Is(err, lineend.ErrBareCR) || errors.Is(err, lineend.ErrBareLF) || errors.As(err, &tl) || isSMTPErr(err) {
		return err
	}
	return fmt.Errorf("%w: %w", errReadFailed, err)
}

func isSMTPErr(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

// rejectReply is the end-of-DATA reply for a policy reject. The reason is
// the operator's text, stripped of anything that could break the reply.
func rejectReply(reason string) *smtp.SMTPError {
	if reason == "" {
		reason = "Message refused by policy: recipients must not be shown to each other"
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: oneline.ASCII(reason, 400)}
}
