package upstream

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

const smtpSink = "/usr/sbin/smtp-sink"

// startSink runs Postfix's smtp-sink on a free loopback port. (It binds
// with SO_REUSEPORT, so a port taken by a leftover sink would be shared
// silently; a fresh ephemeral port avoids that.)
func startSink(t *testing.T) string { return startSinkB(t) }

func startSinkB(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(smtpSink); err != nil {
		t.Skipf("%s not installed", smtpSink)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(smtpSink, "-u", "nobody", addr, "10")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSmtpSink sends 200 transactions over one Conn to Postfix's
// smtp-sink, which pipelines like the real Postfix.
func TestSmtpSink(t *testing.T) {
	addr := startSink(t)
	c, err := Dial(context.Background(), Config{Address: addr, Helo: "relay.example", TLS: "opportunistic",
		ConnectTimeout: 5 * time.Second, CommandTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Supports("PIPELINING") {
		t.Error("smtp-sink does not advertise PIPELINING")
	}
	msg := string(benchBody(2<<10)) + "\r\n"
	for i := range 200 {
		tx := &Transaction{
			From:  fmt.Sprintf("sender%d@example.com", i),
			Size:  int64(len(msg)),
			Rcpts: rcpts("a@example.com", fmt.Sprintf("b%d@example.net", i)),
			Body:  body(msg),
		}
		if i%2 == 1 { // smtp-sink advertises DSN
			tx.Ret, tx.EnvID = "HDRS", fmt.Sprintf("id+%d=x", i)
			tx.Rcpts[0].Notify, tx.Rcpts[0].ORcpt = []string{"FAILURE", "DELAY"}, "rfc822;a+1@example.com"
		}
		res, err := c.Send(tx)
		if err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
		for j, r := range res {
			if r != nil {
				t.Fatalf("transaction %d recipient %d: %v", i, j, r)
			}
		}
	}
	if err := c.Noop(); err != nil {
		t.Error(err)
	}
	if err := c.Reset(); err != nil {
		t.Error(err)
	}
}
