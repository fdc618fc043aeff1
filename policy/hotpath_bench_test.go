package policy

import (
	"bytes"
	"context"
	"testing"

	"github.com/bccguard/bccguard/internal/mailhdr"
)

// BenchmarkSmallMessagePath is the policy's share of one 2 KiB one-to-one
// message at the end of DATA, as relay/ingest.go does it: the header read
// once, the watch list, the body scan teed in 4 KiB writes, and the
// built-in policy's decision. It is the part of the 250's latency (and of
// the garbage per message) that the policy owns:
//
//	go test -run '^$' -bench SmallMessagePath -benchmem -count 6 ./policy/
func BenchmarkSmallMessagePath(b *testing.B) {
	bodies := []struct{ name, line string }{
		{"letter", "Hello Anna, the meeting is moved to Tuesday at 10. Best, Jonas\r\n"},
		// make bench's body: a ten-digit run on every line, which is no
		// phone number and costs a libphonenumber parse unless remembered
		// (content.NotPhones).
		{"digits", "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrstu\r\n"},
	}
	head := []byte("From: Jonas <jonas@brand.example>\r\nTo: Anna <anna@example.net>\r\nSubject: meeting\r\n" +
		"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@brand.example>\r\n\r\n")
	p, err := Load(nil, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, body := range bodies {
		b.Run(body.name, func(b *testing.B) {
			text := bytes.Repeat([]byte(body.line), 2048/len(body.line)+1)
			msg := append(append([]byte(nil), head...), text...)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				in := &Input{Listener: "smtp", Sender: "jonas@brand.example", Recipients: []string{"anna@example.net"}, Header: head}
				in.Visible = ReadVisible(mailhdr.Read(head))
				o := p.ScanOptions()
				o.Watch = WatchFor(in)
				in.Watch = o.Watch
				s := NewScanner(o)
				for i := 0; i < len(msg); i += 4096 {
					s.Write(msg[i:min(len(msg), i+4096)])
				}
				s.Close()
				in.Size = int64(len(msg))
				in.Body = s.Result()
				if d, _ := p.Evaluate(context.Background(), in); d.Effective() != Pass {
					b.Fatal(d)
				}
			}
		})
	}
}
