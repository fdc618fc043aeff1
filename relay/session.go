package relay

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtpaddr"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/limit"
	"github.com/bccguard/bccguard/relay/store"
)

// session is one SMTP client connection, from EHLO to QUIT (go-smtp makes a
// new one after STARTTLS). It checks who may relay, collects the envelope
// and hands DATA to the ingest path.
type session struct {
	srv   *Server
	lst   *listener
	conn  *smtp.Conn
	guard *guardedConn
	log   *slog.Logger

	ip        netip.Addr
	allowed   bool // from an allow-listed network
	user      string
	tls       bool
	authFails int

	env     store.Envelope
	hasMail bool
	limitTx *limit.Tx // the transaction's rate limit check (ratelimit.go)
}

func (l *listener) newSession(c *smtp.Conn) (smtp.Session, error) {
	if l.srv.closing.Load() {
		return nil, errShuttingDown
	}
	s := &session{srv: l.srv, lst: l, conn: c, guard: guardOf(c.Conn())}
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		s.ip = ap.Addr().Unmap()
	}
	for _, p := range l.cfg.AllowNetworks {
		if p.Contains(s.ip) {
			s.allowed = true
			break
		}
	}
	_, s.tls = c.TLSConnectionState()
	s.log = l.srv.log.With("listener", l.cfg.Name, "client_ip", s.ip.String())
	return s, nil
}

// guardOf finds bccguard's connection wrapper below a TLS layer.
func guardOf(c net.Conn) *guardedConn {
	for {
		switch v := c.(type) {
		case *guardedConn:
			return v
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

// AuthMechanisms is offered only where the listener allows AUTH; go-smtp
// itself hides AUTH until TLS is up.
func (s *session) AuthMechanisms() []string {
	if !*s.lst.cfg.Auth || s.srv.users == nil {
		return nil
	}
	return s.srv.users.Mechanisms()
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if !*s.lst.cfg.Auth || s.srv.users == nil {
		return nil, smtp.ErrAuthUnsupported
	}
	return s.srv.users.NewServer(mech, func(user, pass string) error {
		if !s.srv.users.Verify(user, pass) {
			s.srv.metrics.authFailures.WithLabelValues(s.lst.cfg.Name).Inc()
			s.log.Warn("auth failed", "mechanism", mech)
			// go-smtp lets a client retry forever on one connection;
			// a few tries and it must reconnect, which slows guessing.
			if s.authFails++; s.authFails >= maxAuthFailures && s.guard != nil {
				s.guard.closeAfterNextWrite()
				return errTooManyAuthFailures
			}
			return smtp.ErrAuthFailed
		}
		s.user = user
		s.log = s.log.With("user", user)
		return nil
	})
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.hasMail {
		// go-smtp keeps the recipients of the transaction under way, so
		// a second envelope would go out with the first's (or none).
		return errNestedMail
	}
	if !s.allowed && s.user == "" {
		s.srv.metrics.rejected.WithLabelValues("relay_denied").Inc()
		if *s.lst.cfg.Auth && s.srv.users != nil {
			return errAuthRequired
		}
		return errRelayDenied
	}
	sender, err := envelopeAddr(from, opts.UTF8, true)
	if err != nil {
		return err
	}
	if err := s.limitMail(sender); err != nil {
		return err
	}
	s.env = store.Envelope{
		Sender:   sender,
		Ret:      string(opts.Return),
		EnvID:    opts.EnvelopeID,
		Body:     string(opts.Body),
		SMTPUTF8: opts.UTF8,
	}
	s.hasMail = true
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if !s.hasMail {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "MAIL first"}
	}
	if len(s.env.Recipients) >= s.lst.cfg.Limits.MaxRecipients {
		return errTooManyRcpts
	}
	addr, err := envelopeAddr(to, s.env.SMTPUTF8, false)
	if err != nil {
		return err
	}
	if err := s.limitRcpt(); err != nil {
		return err
	}
	r := store.Recipient{Addr: addr}
	for _, n := range opts.Notify {
		r.Notify = append(r.Notify, string(n))
	}
	if opts.OriginalRecipient != "" {
		r.ORcpt = string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
	}
	s.env.Recipients = append(s.env.Recipients, r)
	return nil
}

func (s *session) Reset() {
	s.env = store.Envelope{}
	s.hasMail = false
	s.limitEnd()
}

func (s *session) Logout() error {
	s.limitEnd()
	return nil
}

func (s *session) clientInfo() store.Client {
	return store.Client{
		Listener: s.lst.cfg.Name,
		IP:       s.ip.String(),
		Helo:     s.conn.Hostname(),
		User:     s.user,
		TLS:      s.tls,
	}
}

// Data receives the message, decides, stores it durably and only then
// answers 250. Errors are mapped to replies in one place (replyFor).
func (s *session) Data(r io.Reader) error {
	start := time.Now()
	lim := s.lst.cfg.Limits
	if s.guard != nil {
		s.guard.setHardDeadline(start.Add(lim.DataTimeout.D()))
		defer s.guard.releaseAtNextReply()
	}
	ctx := context.Background()
	id, dec, err := s.srv.ingest(ctx, s, r, lim)
	s.srv.metrics.dataSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		reply, closeConn := replyFor(err)
		if closeConn && s.guard != nil {
			s.guard.closeAfterNextWrite()
			if reply == errDataTimeout {
				// Out of time: the 421 goes out now, not after go-smtp
				// has drained what the client might still send.
				s.guard.endReads()
			}
		}
		reason := "error"
		switch {
		case dec.Effective() == policy.Reject:
			reason = "policy"
		case isSMTPErr(err):
			reason = fmt.Sprintf("%d", reply.Code)
		}
		s.srv.metrics.rejected.WithLabelValues(reason).Inc()
		if reply == errBareCR || reply == errBareLF {
			s.srv.metrics.bareNewlines.WithLabelValues(s.lst.cfg.Name, "rejected").Inc()
		}
		if reply.Code >= 400 && !isSMTPErr(err) {
			s.log.Error("message not accepted", "err", err, "reply", reply.Code)
		} else {
			s.log.Info("message not accepted", "reply", reply.Code, "reason", reply.Message, "rule", dec.Rule)
		}
		return reply
	}
	if dec.Effective() == policy.Quarantine {
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: held for review as " + id}
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + id}
}

// envelopeAddr parses a MAIL FROM (sender) or RCPT TO path as go-smtp
// (patched) hands it over, as the client wrote it, and returns the form
// bccguard stores, logs and gives the policy; the upstream writer quotes it
// back (smtpaddr.Wire). An address it refuses gets its 553 reply. The
// null sender "" stays "".
func envelopeAddr(path string, utf8, sender bool) (string, error) {
	if path == "" && sender {
		return "", nil
	}
	mb, err := smtpaddr.Parse(path, utf8)
	if err != nil {
		return "", badAddress(err, sender)
	}
	return mb.String(), nil
}
