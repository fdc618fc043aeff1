package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// hash makes a cheap bcrypt hash; tests use MinCost to stay fast.
func hash(t testing.TB, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsersVerify(t *testing.T) {
	file := writeFile(t, "# CRM accounts\n\nhubspot:"+hash(t, "hs-pass")+"\r\n  salesforce : "+hash(t, "sf-pass")+"  \n")
	u, err := NewUsers([]User{{Name: "crm", PasswordHash: hash(t, "s3cret")}}, []string{file})
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 3 {
		t.Fatalf("Len = %d, want 3", u.Len())
	}
	tests := []struct {
		name, pass string
		want       bool
	}{
		{"crm", "s3cret", true},
		{"hubspot", "hs-pass", true},
		{"salesforce", "sf-pass", true},
		{"crm", "S3cret", false},
		{"crm", "", false},
		{"CRM", "s3cret", false},
		{"ghost", "s3cret", false},
		{"", "", false},
	}
	for _, tc := range tests {
		if got := u.Verify(tc.name, tc.pass); got != tc.want {
			t.Errorf("Verify(%q, %q) = %v, want %v", tc.name, tc.pass, got, tc.want)
		}
	}
	if err := u.Check("crm", "wrong"); err == nil || !strings.Contains(err.Error(), "535") {
		t.Errorf("Check with a wrong password = %v, want the 535 reply", err)
	}
}

func TestUnknownUserCostsAsMuch(t *testing.T) {
	h6 := "$2a$06$" + strings.Repeat("a", 53) // cost is read from the prefix only
	u := &Users{static: []User{{"a", hash(t, "x")}, {"b", h6}}}
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if c, _ := bcrypt.Cost(u.dummy); c != 6 {
		t.Fatalf("dummy hash cost = %d, want 6 (the highest configured)", c)
	}
}

func TestPasswordFileErrors(t *testing.T) {
	good := hash(t, "pw")
	tests := []struct {
		name, content, want string
	}{
		{"plain text", "# c\nalice:" + good + "\nbob:hunter2\n", ":3: user \"bob\": password is not a bcrypt hash"},
		{"no colon", "\n\nalice " + good + "\n", ":3: expected name:bcrypthash"},
		{"empty name", ":" + good + "\n", ":1: empty user name"},
		{"empty hash", "alice:\n", ":1: user \"alice\": empty password hash"},
		{"truncated hash", "alice:" + good[:40] + "\n", ":1: user \"alice\": malformed bcrypt hash"},
		{"bad cost", "alice:$2a$99$" + good[7:] + "\n", ":1: user \"alice\": malformed bcrypt hash"},
		{"duplicate", "alice:" + good + "\n#\nalice:" + good + "\n", ":3: user \"alice\" is already defined at "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.content)
			_, err := NewUsers(nil, []string{p})
			if err == nil || !strings.HasPrefix(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q after the file name", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error echoes the plain-text password: %v", err)
			}
		})
	}
}

func TestConfigUserErrors(t *testing.T) {
	_, err := NewUsers([]User{{Name: "ok", PasswordHash: hash(t, "x")}, {Name: "crm", PasswordHash: "secret"}}, nil)
	if err == nil || !strings.Contains(err.Error(), `auth users[1]: user "crm": password is not a bcrypt hash`) {
		t.Fatalf("err = %v", err)
	}
	_, err = NewUsers(nil, []string{filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestReload(t *testing.T) {
	p := writeFile(t, "alice:"+hash(t, "one")+"\n")
	u, err := NewUsers(nil, []string{p})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("alice:"+hash(t, "two")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if u.Verify("alice", "one") || !u.Verify("alice", "two") {
		t.Fatal("Reload did not pick up the new password")
	}
	if err := os.WriteFile(p, []byte("alice:plain\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := u.Reload(); err == nil {
		t.Fatal("Reload accepted a plain-text password")
	}
	if !u.Verify("alice", "two") {
		t.Fatal("a failed Reload dropped the previous users")
	}
}
