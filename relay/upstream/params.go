package upstream

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtpaddr"
)

const hexDigits = "0123456789ABCDEF"

// appendXtext appends s as xtext (RFC 3461 §4): printable ASCII except "+"
// and "=" as is, every other byte as "+XX". It works on bytes, not runes:
// go-smtp's encoder writes a rune's code point, which is wrong past ASCII.
func appendXtext(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= '!' && ch <= '~' && ch != '+' && ch != '=' {
			dst = append(dst, ch)
			continue
		}
		dst = append(dst, '+', hexDigits[ch>>4], hexDigits[ch&15])
	}
	return dst
}

// appendUTF8AddrXtext appends s as utf-8-addr-xtext (RFC 6533 §3): printable
// ASCII except "+", "=" and "\" as is, every other character as "\x{HEX}"
// with its code point in upper-case hex, no leading zeros, at least two
// digits. s must be valid UTF-8.
func appendUTF8AddrXtext(dst []byte, s string) []byte {
	for _, r := range s {
		if r >= '!' && r <= '~' && r != '+' && r != '=' && r != '\\' {
			dst = append(dst, byte(r))
			continue
		}
		dst = append(dst, `\x{`...)
		var hex [8]byte
		n := len(hex)
		for v := uint32(r); v != 0 || len(hex)-n < 2; v >>= 4 {
			n--
			hex[n] = hexDigits[v&15]
		}
		dst = append(dst, hex[n:]...)
		dst = append(dst, '}')
	}
	return dst
}

// checkLine refuses text that would break out of a command line (the
// HELO name).
func checkLine(what, s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f || s[i] == '<' || s[i] == '>' {
			return fmt.Errorf("upstream: invalid %s %q", what, s)
		}
	}
	return nil
}

// wire returns the transaction as it goes out: every address in its RFC
// 5321 form (a local part quoted where it must be, so the upstream gets the
// mailbox that was accepted), without the recipients that cannot be written
// at all. Such a recipient (stored before addresses were parsed strictly: a
// NUL, a line end) gets refused[i], a permanent 553 5.1.3 standing for the
// upstream's reply, so that it bounces at once and holds back no one else;
// the other entries of refused are nil, and index maps the returned
// transaction's recipients to tx's. A sender that cannot be written fails
// the whole transaction with a 553 5.1.7.
func (tx *Transaction) wire() (out *Transaction, index []int, refused []error, err error) {
	w := *tx
	if tx.From != "" {
		if w.From, err = smtpaddr.Wire(tx.From); err != nil {
			return nil, nil, nil, &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7},
				Message: "sender address cannot be sent: " + reason(err)}
		}
	}
	w.Rcpts = make([]Recipient, 0, len(tx.Rcpts))
	refused = make([]error, len(tx.Rcpts))
	for i, r := range tx.Rcpts {
		addr, err := smtpaddr.Wire(r.Addr)
		if err != nil {
			refused[i] = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3},
				Message: "recipient address cannot be sent: " + reason(err)}
			continue
		}
		r.Addr = addr
		w.Rcpts = append(w.Rcpts, r)
		index = append(index, i)
	}
	return &w, index, refused, nil
}

func reason(err error) string {
	var ae *smtpaddr.Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return "invalid address"
}

// appendMail builds "MAIL FROM:<...> params\r\n". tx is already checked
// and in its wire form.
func (c *Conn) appendMail(dst []byte, tx *Transaction) []byte {
	dst = append(dst, "MAIL FROM:<"...)
	dst = append(dst, tx.From...)
	dst = append(dst, '>')
	if c.feat.eightBit {
		// As go-smtp's client: the body may be 8-bit, and saying so is
		// harmless when it is not.
		dst = append(dst, " BODY=8BITMIME"...)
	}
	if c.feat.size && tx.Size > 0 {
		dst = append(dst, " SIZE="...)
		dst = strconv.AppendInt(dst, tx.Size, 10)
	}
	if tx.UTF8 {
		dst = append(dst, " SMTPUTF8"...)
	}
	if c.feat.dsn {
		if tx.Ret != "" {
			dst = append(dst, " RET="...)
			dst = append(dst, strings.ToUpper(tx.Ret)...)
		}
		if tx.EnvID != "" {
			dst = append(dst, " ENVID="...)
			dst = appendXtext(dst, tx.EnvID)
		}
	}
	return append(dst, "\r\n"...)
}

// appendRcpt builds "RCPT TO:<...> params\r\n". r is already checked and
// in its wire form.
func (c *Conn) appendRcpt(dst []byte, r *Recipient) []byte {
	dst = append(dst, "RCPT TO:<"...)
	dst = append(dst, r.Addr...)
	dst = append(dst, '>')
	if !c.feat.dsn {
		return append(dst, "\r\n"...)
	}
	for i, n := range r.Notify {
		if i == 0 {
			dst = append(dst, " NOTIFY="...)
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, strings.ToUpper(n)...)
	}
	if typ, addr, ok := strings.Cut(r.ORcpt, ";"); ok {
		dst = append(dst, " ORCPT="...)
		if strings.EqualFold(typ, "utf-8") || !isASCII(addr) {
			// RFC 6533 §3: a non-ASCII address is of type utf-8, in this
			// form, which is plain ASCII and so valid with or without
			// SMTPUTF8.
			dst = append(dst, "utf-8;"...)
			dst = appendUTF8AddrXtext(dst, addr)
		} else {
			dst = append(dst, typ...)
			dst = append(dst, ';')
			dst = appendXtext(dst, addr)
		}
	}
	return append(dst, "\r\n"...)
}

// check refuses a transaction whose parameters could not be sent as they
// are, before anything is written.
func (tx *Transaction) check() error {
	if tx.Body == nil {
		return fmt.Errorf("upstream: transaction without a body")
	}
	if len(tx.Rcpts) == 0 {
		return fmt.Errorf("upstream: transaction without recipients")
	}
	switch strings.ToUpper(tx.Ret) {
	case "", "FULL", "HDRS":
	default:
		return fmt.Errorf("upstream: invalid RET %q", tx.Ret)
	}
	if !isPrintableASCII(tx.EnvID) {
		return fmt.Errorf("upstream: invalid ENVID %q", tx.EnvID)
	}
	for i := range tx.Rcpts {
		r := &tx.Rcpts[i]
		for _, n := range r.Notify {
			switch strings.ToUpper(n) {
			case "NEVER", "SUCCESS", "FAILURE", "DELAY":
			default:
				return fmt.Errorf("upstream: invalid NOTIFY %q", n)
			}
		}
		if r.ORcpt == "" {
			continue
		}
		typ, addr, ok := strings.Cut(r.ORcpt, ";")
		if !ok || typ == "" || addr == "" || !isAtom(typ) || !utf8.ValidString(addr) {
			return fmt.Errorf("upstream: invalid ORCPT %q", r.ORcpt)
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isPrintableASCII is what RFC 3461 allows in ENVID (before xtext).
func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// isAtom accepts an address type name ("rfc822", "utf-8").
func isAtom(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-') {
			return false
		}
	}
	return true
}
