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
	text := bytes.Repeat([]byte("Hello Anna, the meeting is moved to Tuesday at 10. Best, Jonas\r\n"), 28)
	head := []byte("From: Jonas <jonas@brand.example>\r\nTo: Anna <anna@example.net>\r\nSubject: meeting\r\n" +
		"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@brand.example>\r\n\r\n")
	msg := append(append([]byte(nil), head...), text...)
	p, err := Load(nil, "")
	if err != nil {
		b.Fatal(err)
	}
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
}
