package dkim

import (
	"bytes"
	"io"
	"slices"
	"testing"
	"time"
)

// FuzzVerify: the Verifier takes any bytes as a message without panicking
// or hanging (each check ends within a bound); Sign does not panic on them
// either. And a message with any body, signed by Sign with both key types,
// verifies through the Verifier, while changing one byte of its body so
// that its relaxed canonical form changes makes both signatures fail.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(message), []byte("How do you like it?\r\n"), uint(3), byte('X'))
	f.Add([]byte("DKIM-Signature: v=1; a=rsa-sha256; d=brand.example; s=s1; h=from; bh=; b=\r\n\r\n"), []byte(""), uint(0), byte('a'))
	f.Add([]byte("From: a@b\r\n"), []byte("line  with   spaces \r\n\r\n\r\n"), uint(4), byte('\t'))
	f.Add([]byte("\r\n\r\n\r\n"), []byte("a\rb\nc\r\n.\r\n"), uint(1), byte(' '))
	f.Add([]byte("DKIM-Signature: x\r\nDKIM-Signature: y\r\nFrom: a@b\r\n\r\nz"), []byte("é ü\r\n"), uint(0), byte(0))

	z := zone{}
	keys := []Key{
		{Domain: "brand.example", Selector: "rsa", Signer: testRSA(f)},
		{Domain: "brand.example", Selector: "ed", Signer: testEd25519(f)},
	}
	for _, k := range keys {
		z.publish(f, k)
	}
	v := &Verifier{Lookup: z.lookup, Timeout: 5 * time.Second}
	head, _, _ := bytes.Cut([]byte(message), []byte("\r\n\r\n"))
	head = append(head, "\r\n\r\n"...)

	f.Fuzz(func(t *testing.T, raw, body []byte, pos uint, b byte) {
		if len(raw) > 64<<10 || len(body) > 64<<10 {
			return
		}
		checkBounded(t, v, raw)
		_, _ = Sign(keys, nil, func(w io.Writer) error { _, err := w.Write(raw); return err })

		body = crlf(body)
		msg := string(append(bytes.Clone(head), body...))
		signed := sign(t, keys, msg)
		if got := checkBounded(t, v, []byte(signed)).Values(); !slices.Equal(got, []string{"pass", "pass"}) {
			t.Fatalf("our signatures on %q: %v, want pass, pass", msg, got)
		}
		if len(body) == 0 {
			return
		}
		i := int(pos % uint(len(body)))
		changed := bytes.Clone(body)
		changed[i] = b
		if bareLineEnd(changed) || bytes.Equal(relaxedBody(changed), relaxedBody(body)) {
			return // not a change relaxed canonicalization sees
		}
		tampered := signed[:len(signed)-len(body)] + string(changed)
		if got := checkBounded(t, v, []byte(tampered)).Values(); !slices.Equal(got, []string{"fail", "fail"}) {
			t.Fatalf("body byte %d changed %q -> %q, yet: %v", i, body[i], b, got)
		}
	})
}

// checkBounded verifies msg through v and fails the test if the result
// takes longer than the Verifier's bound and then some.
func checkBounded(t *testing.T, v *Verifier, msg []byte) Result {
	t.Helper()
	done := make(chan Result, 1)
	go func() { done <- check(v, string(msg)) }()
	select {
	case r := <-done:
		return r
	case <-time.After(v.Timeout + 10*time.Second):
		t.Fatalf("verification of %d bytes did not end", len(msg))
		return Result{}
	}
}

// crlf makes every line end CRLF (a bare CR or LF becomes one).
func crlf(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

func bareLineEnd(b []byte) bool {
	return bytes.Count(b, []byte("\r")) != bytes.Count(b, []byte("\r\n")) ||
		bytes.Count(b, []byte("\n")) != bytes.Count(b, []byte("\r\n"))
}

// relaxedBody is RFC 6376 3.4.4 done the obvious way, for a body whose
// lines all end in CRLF (the last may lack it): runs of spaces and tabs
// become one space, none is left at a line's end, empty lines at the end
// go, and a body that is not empty ends in CRLF.
func relaxedBody(b []byte) []byte {
	lines := bytes.Split(b, []byte("\r\n"))
	var out [][]byte
	for _, l := range lines {
		var c []byte
		ws := false
		for _, ch := range l {
			if ch == ' ' || ch == '\t' {
				ws = true
				continue
			}
			if ws {
				c = append(c, ' ')
				ws = false
			}
			c = append(c, ch)
		}
		out = append(out, c)
	}
	for len(out) > 0 && len(out[len(out)-1]) == 0 {
		out = out[:len(out)-1]
	}
	if len(out) == 0 {
		return nil
	}
	return append(bytes.Join(out, []byte("\r\n")), "\r\n"...)
}
