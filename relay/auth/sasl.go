package auth

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// How go-smtp v0.25 drives a sasl.Server (conn.go, handleAuth), which the
// servers below are written against:
//   - "AUTH MECH" alone calls Next(nil); "AUTH MECH <b64>" calls Next with
//     the decoded initial response; "AUTH MECH =" calls Next([]byte{}).
//   - A challenge is sent base64-encoded as "334 <b64>"; the client's reply
//     line is decoded for the next Next call ("*" cancels with 501).
//   - An error from Next that is an *smtp.SMTPError is sent as it is; any
//     other error becomes "454 4.7.0 <err text>", a temporary failure that
//     would make clients retry forever and leaks the text. So every error
//     leaving this package is an *smtp.SMTPError.

// ErrMalformed is the reply to a SASL exchange that does not follow the
// mechanism's syntax (RFC 4954 lists 501 for unusable client responses).
var ErrMalformed = &smtp.SMTPError{
	Code:         501,
	EnhancedCode: smtp.EnhancedCode{5, 5, 2},
	Message:      "Malformed authentication data",
}

// ErrAuthzid is the reply when a PLAIN client asks to act as someone other
// than the user it authenticated as; bccguard has no proxy users.
var ErrAuthzid = &smtp.SMTPError{
	Code:         535,
	EnhancedCode: smtp.EnhancedCode{5, 7, 8},
	Message:      "Authentication failed: authorization identity must be empty or equal to the user name",
}

// maxField bounds a user name or password; go-smtp's 2000-byte line limit
// already bounds them, this keeps nonsense out of logs and bcrypt.
const maxField = 1024

// Mechanisms returns the SASL mechanisms NewServer offers, for
// AuthSession.AuthMechanisms.
func Mechanisms() []string {
	return []string{sasl.Plain, sasl.Login}
}

// NewServer returns the SASL server for mech, for AuthSession.Auth. verify
// is called at most once, with the user name and password the client sent;
// nil accepts them, so a session records the authenticated user in verify.
// An *smtp.SMTPError from verify is sent as it is (for example a 454 for a
// temporary failure); any other error is answered 535 5.7.8.
func NewServer(mech string, verify func(user, pass string) error) (sasl.Server, error) {
	check := func(user, pass string) error {
		err := verify(user, pass)
		if err == nil {
			return nil
		}
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se
		}
		return smtp.ErrAuthFailed
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return replyErrors{sasl.NewPlainServer(func(authzid, user, pass string) error {
			if !validField(user) || !validField(pass) || !validField(authzid) {
				return ErrMalformed
			}
			if authzid != "" && authzid != user {
				return ErrAuthzid
			}
			return check(user, pass)
		})}, nil
	case sasl.Login:
		return replyErrors{&loginServer{verify: check}}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// replyErrors turns errors that are not SMTP replies (go-sasl's "invalid
// response" for a PLAIN message without two NULs, say) into ErrMalformed,
// instead of go-smtp's 454 with the library's text.
type replyErrors struct{ sasl.Server }

func (s replyErrors) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := s.Server.Next(response)
	if err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			err = ErrMalformed
		}
	}
	return challenge, done, err
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login). It is written here because go-sasl has only
// a LOGIN client (and means to drop LOGIN), while many CRM tools and Windows
// clients speak nothing else.
//
// The exchange: the server challenges "Username:" then "Password:". A
// client may send the user name as the initial response ("AUTH LOGIN
// dXNlcg==", as go-sasl's own client and Outlook do), which skips the first
// challenge; an empty initial response ("AUTH LOGIN =") is treated as none,
// as Cyrus SASL does.
type loginServer struct {
	verify func(user, pass string) error
	state  int // 0 start, 1 asked for the user name, 2 asked for the password, 3 done
	user   string
}

var (
	usernameChallenge = []byte("Username:")
	passwordChallenge = []byte("Password:")
)

func (s *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch s.state {
	case 0:
		if len(response) == 0 {
			s.state = 1
			return usernameChallenge, false, nil
		}
		return s.takeUser(response)
	case 1:
		return s.takeUser(response)
	case 2:
		s.state = 3
		pass := string(response)
		if !validField(pass) {
			return nil, true, ErrMalformed
		}
		return nil, true, s.verify(s.user, pass)
	}
	return nil, true, ErrMalformed
}

func (s *loginServer) takeUser(response []byte) ([]byte, bool, error) {
	s.user = string(response)
	if !validField(s.user) {
		s.state = 3
		return nil, true, ErrMalformed
	}
	s.state = 2
	return passwordChallenge, false, nil
}

// validField rejects what no real credential contains: invalid UTF-8, NUL
// and other control characters, and absurd lengths.
func validField(s string) bool {
	if len(s) > maxField || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
