package content_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/bccguard/bccguard/policy/content"
)

// A set shared across messages changes no message's counts: what it
// remembers is only what was not a phone, and a phone number is parsed
// (and counted) every time.
func TestNotPhonesSharedAcrossMessages(t *testing.T) {
	np := content.NewNotPhones(content.DefaultNotPhones)
	msgs := []string{
		"Order 0123456789 shipped. Call 020 7946 0001 for help.\r\n",
		"Ref 0123456789 again; no phone here, only 1234567 and 0123456789.\r\n",
		"Call 020 7946 0001 or 020 7946 0002, ref 0123456789.\r\n",
	}
	for i, body := range msgs {
		msg := []byte("Subject: t\r\nContent-Type: text/plain\r\n\r\n" + body)
		scan := func(np *content.NotPhones) content.Counts {
			s := content.New(content.Options{PhoneRegion: "GB", TempDir: t.TempDir(), NotPhones: np})
			s.Message(bytes.NewReader(msg))
			return s.Result().Totals
		}
		alone, shared := scan(nil), scan(np)
		if alone != shared {
			t.Errorf("message %d: counts %+v with the shared set, %+v without", i+1, shared, alone)
		}
	}
	if n := np.Len(); n == 0 {
		t.Error("nothing remembered: 0123456789 is no phone number in GB")
	}
}

// The set never holds more than its bound.
func TestNotPhonesBounded(t *testing.T) {
	np := content.NewNotPhones(8)
	for i := range 100 {
		msg := fmt.Appendf(nil, "Subject: t\r\n\r\nref 0%09d\r\n", i)
		s := content.New(content.Options{PhoneRegion: "GB", TempDir: t.TempDir(), NotPhones: np})
		s.Message(bytes.NewReader(msg))
		if n := np.Len(); n > 8 {
			t.Fatalf("after %d messages %d remembered, bound 8", i+1, n)
		}
	}
	if np.Len() == 0 {
		t.Error("no reference remembered")
	}
}
