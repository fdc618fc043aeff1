package content_test

import (
	"bytes"
	"testing"

	"github.com/bccguard/bccguard/policy/content"
)

// BenchmarkBigText is the 10 MiB message of tests/bench (make bench): a
// plain text body of one line repeated, with a run of digits in each,
// watched for its one recipient as the relay watches every message.
func BenchmarkBigText(b *testing.B) {
	w := content.Watch{Keys: []string{"a@example.net"}, Names: [][]string{{"Anna Example"}}}
	line := []byte("The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrstu\r\n")
	msg := append([]byte("From: crm@brand.example\r\nTo: a@example.net\r\nSubject: big\r\n\r\n"), bytes.Repeat(line, (10<<20)/len(line))...)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		s := content.New(content.Options{Watch: w})
		s.Message(bytes.NewReader(msg))
	}
}
