// Package edits is the one table of the header edits each rewrite (pass,
// explode, bcc) makes in the copies of a message: which fields are removed,
// replaced, cleaned of the other recipients' addresses and names, or kept,
// and which hold the message instead when they show another recipient. The
// renderer (package rewrite) carries the edits out, and the policy's
// unsafe-copy guard and the review's release check use the same table
// (Unsafe), so what they hold is exactly what a copy could not make clean.
//
// It is a package of its own, below both, so that the policy can use the
// table without depending on the renderer.
package edits

import (
	"strings"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/relay/store"
)

// Edit is what a copy does with one header field.
type Edit uint8

// Edits.
const (
	// Keep writes the field byte for byte. The rewrite does not look at it:
	// transport data and identifiers, or any field of a pass copy.
	Keep Edit = iota
	// Hold writes the field byte for byte, as it cannot be changed without
	// breaking it (a Subject:, a List-Unsubscribe:). When it shows another
	// recipient, the copy cannot be made safe and the message is held
	// instead (see Unsafe).
	Hold
	// Remove leaves the field out.
	Remove
	// Replace puts the copy's own To: in the place of the first field
	// marked so (To:, Cc:); the others are left out.
	Replace
	// Clean rewrites an address list without the other recipients'
	// mailboxes, and without display names or comments that show them;
	// a list left empty is removed. A list that cannot be parsed cannot be
	// cleaned: it is treated as Hold.
	Clean
)

func (e Edit) String() string {
	return [...]string{"keep", "hold", "remove", "replace", "clean"}[e]
}

// edits is the table: what each rewrite does with a field, by name. A field
// not named here gets the default of its role (defaults below). Stripping
// one more field from copies is one more line.
var edits = map[string][3]Edit{ // pass, explode, bcc
	// Blind fields never leave.
	"bcc":        {Remove, Remove, Remove},
	"resent-bcc": {Remove, Remove, Remove},
	// The copy's own addressee.
	"to": {Keep, Replace, Replace},
	"cc": {Keep, Replace, Replace},
	// The other addressee fields keep the copy's own address only.
	"resent-to":          {Keep, Clean, Clean},
	"resent-cc":          {Keep, Clean, Clean},
	"apparently-to":      {Keep, Clean, Clean},
	"x-apparently-to":    {Keep, Clean, Clean},
	"x-original-to":      {Keep, Clean, Clean},
	"delivered-to":       {Keep, Clean, Clean},
	"envelope-to":        {Keep, Clean, Clean},
	"x-envelope-to":      {Keep, Clean, Clean},
	"x-rcpt-to":          {Keep, Clean, Clean},
	"original-recipient": {Keep, Clean, Clean},
	"x-forwarded-to":     {Keep, Clean, Clean},
	// Answers and notices go on to the addresses that are not other
	// recipients'.
	"sender":                      {Keep, Clean, Clean},
	"resent-sender":               {Keep, Clean, Clean},
	"reply-to":                    {Keep, Clean, Clean},
	"resent-reply-to":             {Keep, Clean, Clean},
	"mail-reply-to":               {Keep, Clean, Clean},
	"mail-followup-to":            {Keep, Clean, Clean},
	"disposition-notification-to": {Keep, Clean, Clean},
	"return-receipt-to":           {Keep, Clean, Clean},
	"errors-to":                   {Keep, Clean, Clean},
	"x-confirm-reading-to":        {Keep, Clean, Clean},
	// The author stays: changing From: breaks DMARC, and every copy
	// shows its author anyway. Other recipients in its display name or
	// comments hold the message.
	"from":        {Keep, Hold, Hold},
	"resent-from": {Keep, Hold, Hold},
}

// defaults are the edits of the fields the table does not name, by role.
var defaults = map[mailhdr.Role][3]Edit{
	mailhdr.Text:      {Keep, Hold, Hold},
	mailhdr.Addressee: {Keep, Clean, Clean},
	mailhdr.Blind:     {Remove, Remove, Remove},
	mailhdr.Author:    {Keep, Hold, Hold},
	mailhdr.Reply:     {Keep, Clean, Clean},
	mailhdr.Trace:     {Keep, Keep, Keep},
}

// For returns what rewrite rw does with a field named name ("" for a
// line that is not a field) read with role (mailhdr.Entry.Role: a trace
// field that a bare CR only makes is read as text).
func For(rw store.Rewrite, name string, role mailhdr.Role) Edit {
	col := 0
	switch rw {
	case store.RewriteExplode:
		col = 1
	case store.RewriteBcc:
		col = 2
	}
	if e, ok := lookup(name); ok && name != "" {
		return e[col]
	}
	return defaults[role][col]
}

// lookup finds name's row in the table, ignoring case. It is asked for
// every field of every copy: an ASCII name is lowered on the stack (a map
// lookup of string(b) does not allocate), others by strings.ToLower.
func lookup(name string) ([3]Edit, bool) {
	var buf [64]byte
	if len(name) > len(buf) {
		e, ok := edits[strings.ToLower(name)]
		return e, ok
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 0x80:
			e, ok := edits[strings.ToLower(name)]
			return e, ok
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
	}
	e, ok := edits[string(b)]
	return e, ok
}
