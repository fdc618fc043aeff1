// Package mailhdr is bccguard's one reader of a message header block: it
// splits the block into fields byte-exactly, unfolds and decodes them, parses
// address lists, and says whom a header shows. The policy, the copy renderer
// (and its DKIM pass) and the review pages all read headers through it, so
// they cannot disagree about what a header says.
//
// It is written here, not taken from go-message, where go-message (and the
// net/mail and net/textproto under it) read headers differently from the mail
// clients whose display bccguard must predict:
//   - textproto.ReadHeader fails the whole block on one line that is not a
//     field (an mbox "From " line, a stray word) and rewrites line ends, while
//     clients skip such a line and show the fields around it, and a copy must
//     keep every byte it does not edit (Split).
//   - net/mail rejects RFC 5322's obsolete syntax (§4: comments inside an
//     addr-spec, obs-route, obs-phrase, obs-local-part) that receivers must
//     accept, fails a whole list on one bad address, and reads no unqualified
//     address (ParseList).
//   - mime.WordDecoder decodes each encoded word alone (a character split over
//     two words is lost), refuses words with spaces or inside quoted strings,
//     and fails the whole value on one bad word; clients decode all of these
//     (Decode).
//
// What go-message does well it still does: charset conversion
// (go-message/charset) and the formatting of the addresses a copy writes
// (go-message/mail.Address).
package mailhdr
