package mailhdr

import "strings"

// Role is what a header field says about people, which decides how it is
// read: as an address list whose every address is a recipient, as the
// author's, as an address list of other roles, as transport data, or as
// free text.
type Role uint8

// Roles.
const (
	// Text is free text (Subject, Keywords, Comments, List-*, X-*, any
	// unknown field and any line that is not a field): it is searched for
	// address-like tokens and for recipients' names.
	Text Role = iota
	// Addressee fields list recipients (To, Cc, Apparently-To):
	// every address in them is a recipient, and so is every address inside
	// their display names and group names.
	Addressee
	// Blind fields list recipients that no copy shows (Bcc, Resent-Bcc).
	Blind
	// Author fields name the message's originator (From, Resent-From).
	Author
	// Reply fields are the other address lists: for answers and notices
	// (Sender, Reply-To, Mail-Followup-To, Disposition-Notification-To,
	// ...) and about an earlier delivery or resending (Delivered-To,
	// X-Original-To, Resent-To, Resent-Cc, ...). Their addresses are the originator's, someone's own mailbox,
	// or other people's.
	Reply
	// Trace fields are transport and identifiers (Received, Message-ID,
	// References, DKIM-Signature, ...): their "@" are not people, and
	// they are not searched.
	Trace
)

func (r Role) String() string {
	return [...]string{"text", "addressee", "blind", "author", "reply", "trace"}[r]
}

// IsList reports whether fields of the role are address lists.
func (r Role) IsList() bool { return r == Addressee || r == Blind || r == Author || r == Reply }

// roles are the fields with a role other than Text, by lowercased name.
var roles = map[string]Role{
	"to": Addressee, "cc": Addressee, "apparently-to": Addressee, "x-apparently-to": Addressee,

	"bcc": Blind, "resent-bcc": Blind,

	"from": Author, "resent-from": Author,

	"sender": Reply, "resent-sender": Reply, "reply-to": Reply, "resent-reply-to": Reply,
	"mail-reply-to": Reply, "mail-followup-to": Reply, "disposition-notification-to": Reply,
	"return-receipt-to": Reply, "errors-to": Reply, "x-confirm-reading-to": Reply,
	"resent-to": Reply, "resent-cc": Reply,
	"delivered-to": Reply, "x-original-to": Reply, "envelope-to": Reply, "x-envelope-to": Reply,
	"x-rcpt-to": Reply, "original-recipient": Reply, "x-forwarded-to": Reply,

	"received": Trace, "return-path": Trace, "message-id": Trace, "resent-message-id": Trace,
	"references": Trace, "in-reply-to": Trace, "date": Trace, "resent-date": Trace,
	"dkim-signature": Trace, "domainkey-signature": Trace, "authentication-results": Trace,
	"arc-seal": Trace, "arc-message-signature": Trace, "arc-authentication-results": Trace,
	"received-spf": Trace, "mime-version": Trace, "content-transfer-encoding": Trace,
	"content-id": Trace, "content-length": Trace,
}

// RoleOf returns the role of a field called name ("" for a line that is
// not a field: Text).
func RoleOf(name string) Role {
	if name == "" {
		return Text
	}
	return roles[strings.ToLower(name)]
}

// listFields are the fields of mailing-list software whose addresses are
// the list's own mailboxes: RFC 2369's List-* (their mailto: targets), and
// what Mailman, ezmlm and others write.
var listFields = map[string]bool{
	"x-beenthere": true, "x-loop": true, "x-mailing-list": true, "mailing-list": true, "x-list": true,
}

// IsListInfra reports whether a field called name names the mailing list's
// own mailboxes: the mailto: targets of a List-* field, every address of
// the others in listFields.
func IsListInfra(name string, mailto bool) bool {
	k := strings.ToLower(name)
	if strings.HasPrefix(k, "list-") {
		return mailto
	}
	return listFields[k]
}
