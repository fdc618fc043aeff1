package relay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/bccguard/bccguard/policy"
)

// redact replaces an address in logs with a keyed hash: stable (the same
// address gives the same token, so an operator can follow one recipient
// through the logs) but not reversible without the key in the data folder.
func (s *Server) redact(addr string) string {
	if addr == "" {
		return "<>"
	}
	if s.redactKey == nil {
		return addr
	}
	m := hmac.New(sha256.New, s.redactKey)
	m.Write([]byte(addr))
	return "addr:" + hex.EncodeToString(m.Sum(nil)[:6])
}

func encodeDecision(d policy.Decision) ([]byte, error) {
	return json.Marshal(d)
}
