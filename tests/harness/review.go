package harness

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// SignIn signs in to the review pages of the relay's admin listener as a
// browser would (the form, its CSRF token, the session cookie) and returns
// a client that carries the session.
func (r *Relay) SignIn(user, password string) *http.Client {
	r.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	base := "http://" + r.AdminAddr() + "/quarantine"
	form := r.mustGet(c, base+"/signin")
	m := csrfField.FindStringSubmatch(form)
	if m == nil {
		r.t.Fatalf("sign-in form without a csrf field:\n%s", form)
	}
	resp, err := c.PostForm(base+"/signin", url.Values{"csrf": {m[1]}, "user": {user}, "password": {password}, "next": {"/quarantine"}})
	if err != nil {
		r.t.Fatalf("sign in: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(b), `action="/quarantine/signin"`) {
		r.t.Fatalf("sign in as %s: %s\n%s", user, resp.Status, b)
	}
	return c
}

// ReviewPage fetches a review page (path below /quarantine, "" for the
// list) with a signed-in client and returns its HTML.
func (r *Relay) ReviewPage(c *http.Client, path string) string {
	r.t.Helper()
	return r.mustGet(c, "http://"+r.AdminAddr()+"/quarantine"+path)
}

func (r *Relay) mustGet(c *http.Client, u string) string {
	r.t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		r.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("GET %s: %s\n%s", u, resp.Status, b)
	}
	return string(b)
}
