package upstream

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtptest"
)

// BenchmarkSendSink measures transactions per second over one connection:
// a 2 KiB message to one recipient, with this client and with go-smtp's
// (Mail, Rcpt, Data one after another, as relay/upstream.go does now),
// against the in-process go-smtp server and, when installed, Postfix's
// smtp-sink.
func BenchmarkSendSink(b *testing.B) {
	msg := append(benchBody(2<<10), "\r\n"...)
	servers := []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"gosmtp-server", func(b *testing.B) string {
			return startServer(b, smtptest.Discard()).Addr()
		}},
		{"smtp-sink", func(b *testing.B) string { return startSinkB(b) }},
	}
	for _, srv := range servers {
		b.Run(srv.name+"/upstream", func(b *testing.B) {
			addr := srv.start(b)
			c, err := Dial(context.Background(), Config{Address: addr, Helo: "relay.example"})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			tx := &Transaction{From: "s@example.com", Size: int64(len(msg)), Rcpts: rcpts("a@example.com"),
				Body: func(w io.Writer) error { _, err := w.Write(msg); return err }}
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if res, err := c.Send(tx); err != nil || res[0] != nil {
					b.Fatal(res, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
		})
		b.Run(srv.name+"/go-smtp-client", func(b *testing.B) {
			addr := srv.start(b)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			c := smtp.NewClient(nc)
			defer c.Close()
			if err := c.Hello("relay.example"); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if err := c.Mail("s@example.com", &smtp.MailOptions{Size: int64(len(msg))}); err != nil {
					b.Fatal(err)
				}
				if err := c.Rcpt("a@example.com", nil); err != nil {
					b.Fatal(err)
				}
				w, err := c.Data()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(msg); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}
