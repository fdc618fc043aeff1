package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// bigHeader is a header block of about 1 MiB (the relay's default limit)
// with n recipients in several To: and Cc: fields.
func bigHeader(n int) []byte {
	var b strings.Builder
	b.WriteString("From: crm@brand.example\r\nSubject: survey\r\n")
	for f := 0; f < 4; f++ {
		b.WriteString([]string{"To: ", "Cc: "}[f%2])
		for i := f; i < n; i += 4 {
			if i > f {
				b.WriteString(",\r\n ")
			}
			fmt.Fprintf(&b, "\"Customer %d, Example\" <customer%d@d%d.example.com>", i, i, i%50)
		}
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

func BenchmarkParseVisible(b *testing.B) {
	h := bigHeader(20000)
	b.SetBytes(int64(len(h)))
	b.ReportAllocs()
	for b.Loop() {
		if v := ParseVisible(h, []string{"brand.example"}); v.Count != 20000 {
			b.Fatal(v.Count)
		}
	}
}

// BenchmarkEvaluate is the built-in policy on a 300-recipient mailing,
// header parsing included: the work done at the end of DATA.
func BenchmarkEvaluate(b *testing.B) {
	in := loadMessage(b, "survey.eml")
	p, _ := Load(nil, "")
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := p.Evaluate(context.Background(), in); d.Action != Explode {
			b.Fatal(d)
		}
	}
}

// BenchmarkEvaluateRules is rule evaluation alone, Visible given.
func BenchmarkEvaluateRules(b *testing.B) {
	in := msgInput("To: a@example.com, b@example.org")
	p, _ := Load(nil, "")
	v := ParseVisible(in.Header, p.InternalDomains())
	in.Visible = &v
	b.ReportAllocs()
	for b.Loop() {
		p.Evaluate(context.Background(), in)
	}
}

func TestBigHeaderSize(t *testing.T) {
	if n := len(bigHeader(20000)); n < 1<<20 || n > 2<<20 {
		t.Errorf("bigHeader is %d bytes", n)
	}
}
