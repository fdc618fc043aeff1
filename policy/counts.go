package policy

import "strings"

// ClientCounts are what the client has sent through bccguard recently,
// the message being decided included: its messages and recipients over
// the last minute, hour and day (sliding windows). The client is its AUTH
// user, or its IP address when it did not log in. The relay counts them
// (shared by every replica on PostgreSQL) only while the policy in force
// uses one of them (UsesClientCounts); `bccguard policy test` sees zeros.
type ClientCounts struct {
	MessagesLastMinute, MessagesLastHour, MessagesLastDay       int64
	RecipientsLastMinute, RecipientsLastHour, RecipientsLastDay int64
}

// UsesClientCounts reports whether a rule of p uses a ClientCounts
// variable: only then does the relay count them for each message.
func (p *Policy) UsesClientCounts() bool {
	for _, r := range p.rules {
		for _, ref := range r.refs {
			if strings.HasPrefix(ref, "client.messages_last_") || strings.HasPrefix(ref, "client.recipients_last_") {
				return true
			}
		}
	}
	return false
}
