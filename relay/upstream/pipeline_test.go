package upstream

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/bccguard/bccguard/config"
)

func rawDial(t *testing.T, addr string) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), Config{Address: addr, Helo: "relay.example", CommandTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return c
}

// TestPipelining proves the envelope goes out in one flush, before any
// reply: the server reads every command without answering. It also checks
// the body on the wire, the 354-without-recipients case of RFC 2920 §3.1,
// and that an owed RSET rides in the next envelope's flush.
func TestPipelining(t *testing.T) {
	const wantBody = "Subject: t\r\n\r\n..dot\r\nline\r\n...two\r\nend\r\n.\r\n"
	addr := rawServer(t, func(rc *rawConn) {
		rc.send("220 mx.example ESMTP\r\n")
		rc.expect("EHLO relay.example")
		rc.send("250-mx.example\r\n250 PIPELINING\r\n")

		// 1: two recipients, delivered.
		got, reads := rc.lines(4)
		want := []string{"MAIL FROM:<s@example.com>", "RCPT TO:<a@example.com>", "RCPT TO:<b@example.com>", "DATA"}
		if !reflect.DeepEqual(got, want) {
			rc.t.Errorf("envelope %q, want %q", got, want)
		}
		if reads != 1 {
			rc.t.Errorf("envelope came in %d reads, want 1 flush", reads)
		}
		rc.send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n")
		if body := rc.data(); body != wantBody {
			rc.t.Errorf("body on the wire %q, want %q", body, wantBody)
		}
		rc.send("250 2.0.0 queued\r\n")

		// 2: recipient refused, yet DATA answered 354: the client ends it
		// with an empty data section.
		got, _ = rc.lines(3)
		if len(got) != 3 || got[2] != "DATA" {
			rc.t.Errorf("envelope %q", got)
		}
		rc.send("250 2.1.0 ok\r\n550 5.1.1 unknown\r\n354 go ahead anyway\r\n")
		rc.expect(".")
		rc.send("554 5.5.1 no valid recipients\r\n")

		// 3: recipient refused, DATA refused: the transaction stays open.
		rc.lines(3)
		rc.send("250 2.1.0 ok\r\n550 5.1.1 unknown\r\n554 5.5.1 no valid recipients\r\n")

		// 4: RSET first, in the same flush.
		got, reads = rc.lines(4)
		want = []string{"RSET", "MAIL FROM:<s@example.com>", "RCPT TO:<a@example.com>", "DATA"}
		if !reflect.DeepEqual(got, want) || reads != 1 {
			rc.t.Errorf("envelope %q in %d reads, want %q in 1", got, reads, want)
		}
		rc.send("250 2.0.0 reset\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n")
		rc.data()
		rc.send("250 2.0.0 queued\r\n")
		rc.quit()
	})
	c := rawDial(t, addr)
	defer c.Close()
	res, err := c.Send(&Transaction{From: "s@example.com", Rcpts: rcpts("a@example.com", "b@example.com"),
		Body: body("Subject: t\r\n\r\n.dot\r\nline\n..two\r\nend")})
	if err != nil || len(res) != 2 || res[0] != nil || res[1] != nil {
		t.Fatalf("1: %v %v", res, err)
	}
	for i := 2; i <= 3; i++ {
		res, err = c.Send(&Transaction{From: "s@example.com", Rcpts: rcpts("x@example.com"), Body: body("x\r\n")})
		if err != nil || len(res) != 1 || codeOf(res[0]) != 550 {
			t.Fatalf("%d: %v %v, want the RCPT's 550", i, res, err)
		}
	}
	if _, err = c.Send(&Transaction{From: "s@example.com", Rcpts: rcpts("a@example.com"), Body: body("x\r\n")}); err != nil {
		t.Fatalf("4: %v", err)
	}
}

// TestLockstep: without PIPELINING (and with EHLO refused, so HELO), the
// client sends one command and waits; the server checks that nothing more
// arrives before it replies.
func TestLockstep(t *testing.T) {
	const quiet = 100 * time.Millisecond
	addr := rawServer(t, func(rc *rawConn) {
		step := func(want, reply string) {
			rc.expect(want)
			rc.quiet(quiet)
			rc.send(reply)
		}
		rc.send("220 mx.example SMTP\r\n")
		step("EHLO relay.example", "502 5.5.2 what?\r\n")
		step("HELO relay.example", "250 mx.example\r\n")

		step("MAIL FROM:<s@example.com>", "250 2.1.0 ok\r\n")
		step("RCPT TO:<a@example.com>", "250 2.1.5 ok\r\n")
		step("RCPT TO:<b@example.com>", "550 5.1.1 unknown\r\n")
		step("RCPT TO:<c@example.com>", "251 2.1.5 will forward\r\n")
		step("DATA", "354 go ahead\r\n")
		if body := rc.data(); body != "hello\r\n.\r\n" {
			rc.t.Errorf("body %q", body)
		}
		rc.quiet(quiet)
		rc.send("250 2.0.0 queued\r\n")

		// All refused: no DATA; the RSET comes with the next transaction.
		step("MAIL FROM:<s@example.com>", "250 2.1.0 ok\r\n")
		step("RCPT TO:<b@example.com>", "550 5.1.1 unknown\r\n")
		step("RSET", "250 2.0.0 ok\r\n")
		step("MAIL FROM:<s@example.com>", "452 4.3.1 full\r\n")
		rc.quit()
	})
	c := rawDial(t, addr)
	defer c.Close()
	if c.Supports("PIPELINING") {
		t.Fatal("HELO session with extensions")
	}
	res, err := c.Send(&Transaction{From: "s@example.com", Rcpts: rcpts("a@example.com", "b@example.com", "c@example.com"), Body: body("hello\r\n")})
	if err != nil || len(res) != 3 || res[0] != nil || codeOf(res[1]) != 550 || res[2] != nil {
		t.Fatalf("1: %v %v", res, err)
	}
	res, err = c.Send(&Transaction{From: "s@example.com", Rcpts: rcpts("b@example.com"), Body: body("hello\r\n")})
	if err != nil || len(res) != 1 || codeOf(res[0]) != 550 {
		t.Fatalf("2: %v %v", res, err)
	}
	_, err = c.Send(&Transaction{From: "s@example.com", Rcpts: rcpts("a@example.com"), Body: body("hello\r\n")})
	if codeOf(err) != 452 {
		t.Fatalf("3: %v, want 452", err)
	}
}

// TestBrokenServers: replies the client cannot trust are ErrNetwork.
func TestBrokenServers(t *testing.T) {
	greet := func(rc *rawConn) {
		rc.send("220 mx.example ESMTP\r\n")
		rc.expect("EHLO relay.example")
		rc.send("250-mx.example\r\n250-STARTTLS\r\n250 PIPELINING\r\n")
	}
	atMail := func(reply string) func(rc *rawConn) {
		return func(rc *rawConn) {
			greet(rc)
			rc.lines(3)
			rc.send(reply)
			rc.expectClosed(rawTimeout)
		}
	}
	var long string
	for range 150 {
		long += "250-x\r\n"
	}
	for _, tc := range []struct {
		name   string
		tls    config.UpstreamTLS
		script func(rc *rawConn)
		code   int // an SMTP reply expected within the error
		atDial bool
	}{
		{name: "greeting 554", atDial: true, code: 554, script: func(rc *rawConn) { rc.send("554 5.3.2 go away\r\n") }},
		{name: "greeting 421", atDial: true, code: 421, script: func(rc *rawConn) { rc.send("421 4.3.2 busy\r\n") }},
		{name: "greeting 250", atDial: true, code: 250, script: func(rc *rawConn) { rc.send("250 hello?\r\n") }},
		{name: "ehlo 451", atDial: true, code: 451, script: func(rc *rawConn) {
			rc.send("220 mx.example\r\n")
			rc.expect("EHLO relay.example")
			rc.send("451 4.3.0 later\r\n")
		}},
		{name: "starttls injection", atDial: true, tls: "required", script: func(rc *rawConn) {
			greet(rc)
			rc.expect("STARTTLS")
			rc.send("220 2.0.0 go\r\n250 2.0.0 injected\r\n")
			rc.expectClosed(rawTimeout)
		}},
		{name: "mixed codes", script: atMail("250-ok\r\n251 ok\r\n")},
		{name: "garbage", script: atMail("hello\r\n")},
		{name: "too many lines", script: atMail(long + "250 x\r\n")},
		{name: "closed", script: func(rc *rawConn) { greet(rc); rc.lines(3) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawServer(t, tc.script)
			c, err := Dial(context.Background(), Config{Address: addr, Helo: "relay.example", TLS: tc.tls, CommandTimeout: 5 * time.Second})
			if !tc.atDial {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_, err = c.Send(&Transaction{From: "s@example.com", Rcpts: rcpts("a@example.com"), Body: body("x\r\n")})
			}
			if !isNetwork(err) {
				t.Fatalf("err = %v, want ErrNetwork", err)
			}
			if tc.code != 0 && codeOf(err) != tc.code {
				t.Errorf("err = %v, want SMTP %d within", err, tc.code)
			}
			t.Log(err)
		})
	}
}

// An envelope too big to pipeline safely (see maxPipelined) goes lock-step
// even to an upstream that advertises PIPELINING.
func TestLargeEnvelopeGoesLockstep(t *testing.T) {
	const quiet = 100 * time.Millisecond
	n := maxPipelined + 1
	to := make([]string, n)
	for i := range to {
		to[i] = fmt.Sprintf("r%d@example.com", i)
	}
	addr := rawServer(t, func(rc *rawConn) {
		rc.send("220 mx.example ESMTP\r\n")
		rc.expect("EHLO relay.example")
		rc.send("250-mx.example\r\n250 PIPELINING\r\n")
		rc.expect("MAIL FROM:<s@example.com>")
		rc.quiet(quiet)
		rc.send("250 2.1.0 ok\r\n")
		for _, a := range to {
			rc.expect("RCPT TO:<" + a + ">")
			rc.send("250 2.1.5 ok\r\n")
		}
		rc.expect("DATA")
		rc.send("354 go ahead\r\n")
		rc.data()
		rc.send("250 2.0.0 queued\r\n")
		rc.quit()
	})
	c := rawDial(t, addr)
	defer c.Close()
	res, err := c.Send(&Transaction{From: "s@example.com", Rcpts: rcpts(to...), Body: body("x\r\n")})
	if err != nil || len(res) != n {
		t.Fatalf("%d results, %v", len(res), err)
	}
}
