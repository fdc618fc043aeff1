package relay

import (
	"errors"
	"fmt"
	"net"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtpaddr"
	"github.com/bccguard/bccguard/relay/store"
)

// The replies bccguard gives. They live in one place so codes stay stable
// and no internal error text ever reaches a client.
var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required"}
	errRelayDenied = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Relay access denied: this network may not relay and this listener offers no AUTH"}
	errTooBig = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: "Message too big for this relay"}
	errHeaderTooBig = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: "Message header block too big for this relay"}
	// RFC 5321 4.5.3.1.4 names the reply "500 Line too long"; the stream
	// cannot be resynchronised after it, so the connection is closed.
	errLineTooLong = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 0},
		Message: "Line too long, closing connection"}
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
)

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

// replyFor maps an error from the data path to the SMTP reply the client
// gets, and says whether the connection must be closed after it. Internal
// errors become a generic 451: their text is logged, never sent.
func replyFor(err error) (*smtp.SMTPError, bool) {
	var se *smtp.SMTPError
	var ne net.Error
	switch {
	case err == nil:
		return nil, false
	case errors.Is(err, errLineTooLong), errors.Is(err, smtp.ErrTooLongLine):
		return errLineTooLong, true
	case errors.Is(err, errDataTimeout), errors.As(err, &ne) && ne.Timeout():
		return errDataTimeout, true
	case errors.Is(err, smtp.ErrDataReset):
		return errDataBroken, true
	case errors.Is(err, store.ErrNoSpace):
		return errNoSpace, false
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
	if errors.Is(err, smtp.ErrTooLongLine) || isSMTPErr(err) {
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
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: safeText(reason, 400)}
}

// safeText keeps printable ASCII only (no CR/LF that could inject a reply
// line) and caps the length.
func safeText(s string, max int) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < max; i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			b = append(b, c)
		} else if c == '\t' || c == '\r' || c == '\n' {
			b = append(b, ' ')
		}
	}
	return string(b)
}
