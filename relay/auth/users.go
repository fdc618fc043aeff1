// Package auth authenticates SMTP clients on the ingress side: a bcrypt
// credential database built from the config and password files, and the
// PLAIN and LOGIN SASL servers that go-smtp's AuthSession hands out.
package auth

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/emersion/go-smtp"
)

// User is one credential from the config file.
type User struct {
	Name         string
	PasswordHash string // bcrypt, as made by `htpasswd -nB` or bcrypt.GenerateFromPassword
}

// Users is a credential database: the users given in the config plus those
// read from password files. It is safe for concurrent use; Reload swaps the
// whole set at once.
type Users struct {
	static []User
	files  []string

	mu     sync.RWMutex
	hashes map[string][]byte
	dummy  []byte // hash compared for unknown users, so they cost as much as known ones
}

// NewUsers builds the database from config users and password files. A
// password file has one "name:bcrypthash" per line; blank lines and lines
// starting with # are ignored. Errors name the file (or config entry) and
// line, and never echo what was found in the hash position, since that may
// be a plain-text password.
func NewUsers(users []User, passwordFiles []string) (*Users, error) {
	u := &Users{
		static: append([]User(nil), users...),
		files:  append([]string(nil), passwordFiles...),
	}
	if err := u.Reload(); err != nil {
		return nil, err
	}
	return u, nil
}

// Reload re-reads the password files. On error the previous set stays in
// force, so a bad edit to a file does not lock everybody out.
func (u *Users) Reload() error {
	hashes := make(map[string][]byte)
	where := make(map[string]string) // name -> where it was defined, for duplicate errors
	maxCost := 0
	add := func(loc, name, hash string) error {
		if name == "" {
			return fmt.Errorf("%s: empty user name", loc)
		}
		if strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("%s: user name contains control characters", loc)
		}
		cost, err := checkHash(hash)
		if err != nil {
			return fmt.Errorf("%s: user %q: %w", loc, name, err)
		}
		if prev, dup := where[name]; dup {
			return fmt.Errorf("%s: user %q is already defined at %s", loc, name, prev)
		}
		where[name] = loc
		hashes[name] = []byte(hash)
		maxCost = max(maxCost, cost)
		return nil
	}

	for i, su := range u.static {
		if err := add(fmt.Sprintf("auth users[%d]", i), su.Name, su.PasswordHash); err != nil {
			return err
		}
	}
	for _, path := range u.files {
		if err := readPasswordFile(path, add); err != nil {
			return err
		}
	}

	if maxCost == 0 {
		maxCost = bcrypt.DefaultCost
	}
	u.mu.RLock()
	dummy := u.dummy
	u.mu.RUnlock()
	if c, err := bcrypt.Cost(dummy); err != nil || c != maxCost {
		// Same cost as the most expensive real hash: an unknown name must
		// not answer faster than a known one.
		dummy, err = bcrypt.GenerateFromPassword([]byte("bccguard-no-such-user"), maxCost)
		if err != nil {
			return fmt.Errorf("auth: making the unknown-user hash: %w", err)
		}
	}

	u.mu.Lock()
	u.hashes, u.dummy = hashes, dummy
	u.mu.Unlock()
	return nil
}

func readPasswordFile(path string, add func(loc, name, hash string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("auth: password file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		loc := fmt.Sprintf("%s:%d", path, n)
		name, hash, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("%s: expected name:bcrypthash", loc)
		}
		if err := add(loc, strings.TrimSpace(name), strings.TrimSpace(hash)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("auth: reading %s: %w", path, err)
	}
	return nil
}

// checkHash accepts only bcrypt hashes ($2a$, $2b$, $2y$; 60 characters)
// and returns their cost.
func checkHash(hash string) (int, error) {
	if hash == "" {
		return 0, errors.New("empty password hash")
	}
	if !strings.HasPrefix(hash, "$2") {
		return 0, errors.New("password is not a bcrypt hash (plain-text passwords are not accepted; make one with `htpasswd -nBC 12 NAME`)")
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil || len(hash) != 60 {
		return 0, errors.New("malformed bcrypt hash (expected 60 characters like $2y$12$...)")
	}
	return cost, nil
}

// Verify reports whether password is right for name. Unknown names are
// compared against a dummy hash so that the answer takes as long as for a
// known name and timing does not reveal which users exist.
func (u *Users) Verify(name, password string) bool {
	u.mu.RLock()
	hash, known := u.hashes[name]
	if !known {
		hash = u.dummy
	}
	u.mu.RUnlock()
	ok := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	return ok && known
}

// Check is Verify shaped as the verify function of NewServer: nil when the
// credentials are right, smtp.ErrAuthFailed (535 5.7.8) otherwise.
func (u *Users) Check(name, password string) error {
	if u.Verify(name, password) {
		return nil
	}
	return smtp.ErrAuthFailed
}

// Len returns the number of users, for startup logs.
func (u *Users) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.hashes)
}
