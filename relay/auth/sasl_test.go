package auth

import (
	"errors"
	"testing"

	"github.com/emersion/go-smtp"
)

// step is one Next call: what the client sends and what the server answers.
type step struct {
	resp      []byte // nil: no initial response
	challenge string
	done      bool
	err       *smtp.SMTPError
}

func testVerify(user, pass string) error {
	if user == "crm" && pass == "s3cret" {
		return nil
	}
	return errors.New("bad credentials") // must still come out as 535
}

func TestServers(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	tests := []struct {
		name  string
		mech  string
		steps []step
	}{
		{"login no initial response", "LOGIN", []step{
			{resp: nil, challenge: "Username:"},
			{resp: b("crm"), challenge: "Password:"},
			{resp: b("s3cret"), done: true},
		}},
		{"login initial response", "login", []step{
			{resp: b("crm"), challenge: "Password:"},
			{resp: b("s3cret"), done: true},
		}},
		{"login empty initial response", "LOGIN", []step{
			{resp: b(""), challenge: "Username:"},
			{resp: b("crm"), challenge: "Password:"},
			{resp: b("s3cret"), done: true},
		}},
		{"login wrong password", "LOGIN", []step{
			{resp: b("crm"), challenge: "Password:"},
			{resp: b("nope"), done: true, err: smtp.ErrAuthFailed},
		}},
		{"login unknown user", "LOGIN", []step{
			{resp: nil, challenge: "Username:"},
			{resp: b("ghost"), challenge: "Password:"},
			{resp: b("s3cret"), done: true, err: smtp.ErrAuthFailed},
		}},
		{"login empty user name", "LOGIN", []step{
			{resp: nil, challenge: "Username:"},
			{resp: b(""), challenge: "Password:"},
			{resp: b("s3cret"), done: true, err: smtp.ErrAuthFailed},
		}},
		{"login NUL in user name", "LOGIN", []step{
			{resp: b("crm\x00x"), done: true, err: ErrMalformed},
		}},
		{"login invalid UTF-8 password", "LOGIN", []step{
			{resp: b("crm"), challenge: "Password:"},
			{resp: b("\xff\xfe"), done: true, err: ErrMalformed},
		}},
		{"plain initial response", "PLAIN", []step{
			{resp: b("\x00crm\x00s3cret"), done: true},
		}},
		{"plain no initial response", "PLAIN", []step{
			{resp: nil, challenge: ""},
			{resp: b("\x00crm\x00s3cret"), done: true},
		}},
		{"plain authzid equal to user", "PLAIN", []step{
			{resp: b("crm\x00crm\x00s3cret"), done: true},
		}},
		{"plain authzid mismatch", "PLAIN", []step{
			{resp: b("boss\x00crm\x00s3cret"), done: true, err: ErrAuthzid},
		}},
		{"plain wrong password", "PLAIN", []step{
			{resp: b("\x00crm\x00wrong"), done: true, err: smtp.ErrAuthFailed},
		}},
		{"plain unknown user", "PLAIN", []step{
			{resp: b("\x00ghost\x00s3cret"), done: true, err: smtp.ErrAuthFailed},
		}},
		{"plain missing NUL", "PLAIN", []step{
			{resp: b("crm s3cret"), err: ErrMalformed},
		}},
		{"plain too many NULs", "PLAIN", []step{
			{resp: b("\x00crm\x00s3\x00cret"), err: ErrMalformed},
		}},
		{"plain empty initial response", "PLAIN", []step{
			{resp: b(""), err: ErrMalformed},
		}},
		{"plain control character", "PLAIN", []step{
			{resp: b("\x00crm\r\nRCPT\x00s3cret"), done: true, err: ErrMalformed},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(tc.mech, testVerify)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tc.steps {
				challenge, done, err := s.Next(st.resp)
				if st.err != nil {
					if err != st.err {
						t.Fatalf("step %d: err = %v, want %v", i, err, st.err)
					}
					return
				}
				if err != nil {
					t.Fatalf("step %d: unexpected error %v", i, err)
				}
				if string(challenge) != st.challenge || done != st.done {
					t.Fatalf("step %d: got (%q, %v), want (%q, %v)", i, challenge, done, st.challenge, st.done)
				}
			}
		})
	}
}

func TestLoginAfterDone(t *testing.T) {
	s, _ := NewServer("LOGIN", testVerify)
	s.Next([]byte("crm"))
	s.Next([]byte("s3cret"))
	if _, _, err := s.Next([]byte("more")); err != ErrMalformed {
		t.Fatalf("extra response: err = %v, want ErrMalformed", err)
	}
}

func TestVerifyErrorsPassThrough(t *testing.T) {
	tempfail := &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Try later"}
	s, _ := NewServer("PLAIN", func(string, string) error { return tempfail })
	if _, _, err := s.Next([]byte("\x00a\x00b")); err != tempfail {
		t.Fatalf("err = %v, want the verify function's SMTP error", err)
	}
}

func TestUnknownMechanism(t *testing.T) {
	if _, err := NewServer("CRAM-MD5", testVerify); err != smtp.ErrAuthUnknownMechanism {
		t.Fatalf("err = %v, want ErrAuthUnknownMechanism", err)
	}
	if got := Mechanisms(); len(got) != 2 || got[0] != "PLAIN" || got[1] != "LOGIN" {
		t.Fatalf("Mechanisms() = %v", got)
	}
}
