package upstream

import (
	"errors"
	"fmt"
	"io"

	"github.com/emersion/go-smtp"
)

// Recipient is one RCPT TO.
type Recipient struct {
	Addr string
	// Notify is the DSN NOTIFY list (NEVER, or SUCCESS, FAILURE, DELAY).
	Notify []string
	// ORcpt is the DSN original recipient, decoded: "type;address", or "".
	ORcpt string
}

// Transaction is one message for Send. DSN parameters (Ret, EnvID, Notify,
// ORcpt) are sent only when the upstream advertises DSN, Size only with SIZE.
type Transaction struct {
	From  string
	Size  int64
	Ret   string // "FULL", "HDRS" or ""
	EnvID string // plain text; sent xtext-encoded
	// UTF8 asks for SMTPUTF8. An upstream without it cannot take the
	// message at all (RFC 6531 §3.4), which Send reports as a 553 5.6.7.
	UTF8  bool
	Rcpts []Recipient
	// Body writes the message with CRLF line ends; the Conn dot-stuffs it
	// and ends the data.
	Body func(w io.Writer) error
}

// envelope is what the upstream said to MAIL, RCPT and DATA.
type envelope struct {
	mail     *smtp.SMTPError
	rcpts    []error // nil for accepted
	accepted int
	dataSent bool
	data     *smtp.SMTPError // nil: 354, go ahead
}

// rcpt records the reply to recipient i's RCPT (nil: accepted).
func (env *envelope) rcpt(i int, se *smtp.SMTPError) {
	if se != nil {
		env.rcpts[i] = se
	} else {
		env.accepted++
	}
}

// Send runs one transaction.
//
// err != nil means nothing was delivered. It is either an *smtp.SMTPError
// (the upstream's reply to MAIL, DATA or the end of data, or the 553 for
// UTF8 without SMTPUTF8), after which the Conn remains usable; or an error
// wrapping ErrNetwork, or the Body's error, after which the Conn is closed;
// or, for parameters that cannot be sent (an unknown RET or NOTIFY), a
// plain error before anything was written.
//
// With err == nil there is one entry per recipient: nil if it was accepted
// (and so the message, at the end of data), else the upstream's
// *smtp.SMTPError for its RCPT, or a 553 5.1.3 for an address that cannot
// be written in a command (never sent). When every RCPT was refused no body
// is sent. Addresses go out in their RFC 5321 form (smtpaddr.Wire): a local
// part such as "u,v" is quoted. A sender that cannot be written is a 553
// 5.1.7 error before anything is sent.
//
// If the upstream advertises PIPELINING, MAIL, every RCPT and DATA go out
// in one flush and the body with its end in another: two round trips.
func (c *Conn) Send(tx *Transaction) ([]error, error) {
	if c.broken != nil {
		return nil, c.unusable()
	}
	if err := tx.check(); err != nil {
		return nil, err
	}
	if tx.UTF8 && !c.feat.utf8 {
		return nil, &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
			Message: "upstream does not support SMTPUTF8, required by this message"}
	}
	wtx, index, refused, err := tx.wire()
	if err != nil {
		return nil, err
	}
	if len(wtx.Rcpts) == 0 {
		return refused, nil
	}
	res, err := c.send(wtx)
	if err != nil {
		return nil, err
	}
	for j, i := range index {
		refused[i] = res[j]
	}
	return refused, nil
}

// send is Send for a transaction in its wire form with every recipient
// writable.
func (c *Conn) send(tx *Transaction) ([]error, error) {
	var env envelope
	var err error
	if c.feat.pipelining && len(tx.Rcpts) <= maxPipelined {
		rset := c.writeEnvelope(tx)
		if err = c.flush(); err == nil {
			env, err = c.readEnvelope(tx, rset)
		}
	} else {
		env, err = c.lockstep(tx)
	}
	if err != nil {
		if errors.Is(err, ErrNetwork) {
			// Before the body nothing can have been delivered.
			err = &notSentError{err}
		}
		return nil, err
	}
	if env.mail != nil || env.accepted == 0 || env.data != nil {
		return c.abandon(&env)
	}
	if err := c.writeBody(tx); err != nil {
		return nil, err
	}
	if err := c.flush(); err != nil {
		return nil, err
	}
	return c.readFinal(&env)
}

// maxPipelined is the most recipients sent in one pipelined group. The
// replies to a group are read only after all of it is written; with
// thousands of recipients they could fill both socket buffers while the
// upstream waits for us to read and we wait for it to read: a deadlock.
// Bigger envelopes go lock-step (bccguard's own deliveries are one
// recipient for explode, and listener-limited otherwise).
const maxPipelined = 100

// notSentError marks a connection failure before the upstream was sent any
// of the body: retrying on a new connection cannot deliver twice.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// NotSent reports whether err is a connection failure that happened before
// any of the message was sent (typically an idle connection the upstream
// had closed), so that the transaction can be retried at once on a new
// connection without risk of a duplicate.
func NotSent(err error) bool {
	var ns *notSentError
	return errors.As(err, &ns)
}

// writeEnvelope buffers, without flushing, RSET if one is owed, MAIL, each
// RCPT and DATA, and says whether it put in RSET. It is separate from the
// flush so that the next transaction's envelope could later follow the
// previous body in the same flush (RFC 2920 allows it after end of data).
// The replies are read only after the whole group is written; that cannot
// deadlock (RFC 2920 §3.1) unless they overflow our socket's receive
// buffer, which takes thousands of recipients.
func (c *Conn) writeEnvelope(tx *Transaction) (rset bool) {
	if c.needRset {
		c.writeLine("RSET")
		rset = true
	}
	c.line = c.appendMail(c.line[:0], tx)
	_, _ = c.w.Write(c.line)
	for i := range tx.Rcpts {
		c.line = c.appendRcpt(c.line[:0], &tx.Rcpts[i])
		_, _ = c.w.Write(c.line)
	}
	c.writeLine("DATA")
	return rset
}

// readEnvelope reads the replies to writeEnvelope's commands. They must
// all be read, whatever the first said, to stay in step with the stream.
func (c *Conn) readEnvelope(tx *Transaction, rset bool) (envelope, error) {
	env := envelope{rcpts: make([]error, len(tx.Rcpts)), dataSent: true}
	if rset {
		if err := c.readRset(); err != nil {
			return env, err
		}
	}
	se, err := c.expect(2)
	if err != nil {
		return env, err
	}
	env.mail = se
	for i := range tx.Rcpts {
		se, err := c.expect(2)
		if err != nil {
			return env, err
		}
		env.rcpt(i, se)
	}
	env.data, err = c.expect(3)
	return env, err
}

// readRset reads the reply to an owed RSET. A refusal leaves the upstream
// in a transaction we cannot end, so the connection is given up.
func (c *Conn) readRset() error {
	se, err := c.expect(2)
	if err != nil {
		return err
	}
	if se != nil {
		return c.fail(fmt.Errorf("%w: RSET refused: %w", ErrNetwork, se))
	}
	c.needRset = false
	return nil
}

// lockstep sends the envelope one command at a time, for upstreams
// without PIPELINING, stopping where a reply makes the rest pointless.
func (c *Conn) lockstep(tx *Transaction) (envelope, error) {
	env := envelope{rcpts: make([]error, len(tx.Rcpts))}
	if c.needRset {
		c.writeLine("RSET")
		if err := c.flush(); err != nil {
			return env, err
		}
		if err := c.readRset(); err != nil {
			return env, err
		}
	}
	c.line = c.appendMail(c.line[:0], tx)
	se, err := c.step(c.line, 2)
	if err != nil || se != nil {
		env.mail = se
		return env, err
	}
	for i := range tx.Rcpts {
		c.line = c.appendRcpt(c.line[:0], &tx.Rcpts[i])
		se, err := c.step(c.line, 2)
		if err != nil {
			return env, err
		}
		env.rcpt(i, se)
	}
	if env.accepted == 0 {
		return env, nil
	}
	env.dataSent = true
	env.data, err = c.step([]byte("DATA\r\n"), 3)
	return env, err
}

// step sends one command line and reads its reply.
func (c *Conn) step(line []byte, class int) (*smtp.SMTPError, error) {
	_, _ = c.w.Write(line)
	if err := c.flush(); err != nil {
		return nil, err
	}
	return c.expect(class)
}

// abandon ends a transaction that has nothing to deliver. If a server
// answered DATA with 354 anyway (RFC 2920 §3.1 says it should not, with no
// valid recipient), an empty data section closes it. A transaction with an
// accepted MAIL otherwise stays open at the upstream: RSET is owed.
func (c *Conn) abandon(env *envelope) ([]error, error) {
	switch {
	case env.dataSent && env.data == nil:
		_, _ = c.w.WriteString(".\r\n")
		if err := c.flush(); err != nil {
			return nil, err
		}
		if _, err := c.expect(2); err != nil {
			return nil, err
		}
	case env.mail == nil:
		c.needRset = true
	}
	switch {
	case env.mail != nil:
		return nil, env.mail
	case env.accepted == 0:
		return env.rcpts, nil
	default:
		return nil, env.data
	}
}

// writeBody buffers the dot-stuffed body and its end. A Body that fails
// leaves a half-written message that must not be ended with "." (that
// would deliver it truncated), so the connection is dropped instead.
func (c *Conn) writeBody(tx *Transaction) error {
	c.dot.reset(c.w)
	berr := tx.Body(&c.dot)
	if c.dot.err != nil {
		// The socket failed, whatever Body made of it.
		return c.fail(fmt.Errorf("%w: %w", ErrNetwork, c.dot.err))
	}
	if berr != nil {
		return c.fail(fmt.Errorf("upstream: message body: %w", berr))
	}
	if err := c.dot.Close(); err != nil {
		return c.fail(fmt.Errorf("%w: %w", ErrNetwork, err))
	}
	return nil
}

// readFinal reads the reply to the end of data, which ends the transaction
// either way.
func (c *Conn) readFinal(env *envelope) ([]error, error) {
	se, err := c.expect(2)
	if err != nil {
		return nil, err
	}
	if se != nil {
		return nil, se
	}
	return env.rcpts, nil
}
