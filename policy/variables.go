package policy

import (
	"slices"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/interpreter"
)

// variable is one name a condition can use. The table below is the single
// source for the CEL declarations, the evaluation, the values shown in
// explanations, the figures a hold records (FigureTable picks them by
// name) and VARIABLES.md (a test keeps that file in step).
type variable struct {
	name string
	typ  *cel.Type
	doc  string
	get  func(*facts) any
}

var listOfStrings = cel.ListType(cel.StringType)

// variables, in the order they are documented.
var variables = []variable{
	{"visible.count", cel.IntType,
		"Distinct addresses a recipient can see in any header field: every address in `To:`, `Cc:` and the other addressee fields (every field counts, not only the first; display names and group names holding addresses included), every envelope recipient or addressee that another field shows (`Reply-To:`, `Sender:`, `X-Recipients:`, a `List-Unsubscribe:` mailto, a `Subject:`, ...), and the addresses of a field that lists two or more others. An address shown twice counts once. The sender's own addresses, a mailing list's own addresses and trace fields (`Received:`, `Message-ID:`, ...) do not count. See \"What counts as visible\" below.",
		func(f *facts) any { return f.vis.Count }},
	{"visible.external", cel.IntType,
		"Visible addresses outside `internal_domains`.",
		func(f *facts) any { return f.vis.External }},
	{"visible.internal", cel.IntType,
		"Visible addresses in `internal_domains`.",
		func(f *facts) any { return f.vis.Internal }},
	{"visible.domains", cel.IntType,
		"Distinct organisations of the visible addresses: their domains, where each address at a consumer mailbox domain (gmail.com, qq.com, ...; see below) and each unqualified address counts as an organisation of its own.",
		func(f *facts) any { return f.vis.Organisations }},
	{"visible.external_domains", cel.IntType,
		"Distinct organisations (as for `visible.domains`) of the external visible addresses.",
		func(f *facts) any { return f.vis.ExternalDomains }},
	{"visible.consumer", cel.IntType,
		"Visible addresses at consumer mailbox domains: private people, not a partner company.",
		func(f *facts) any { return f.vis.Consumer }},
	{"visible.elsewhere", cel.IntType,
		"Visible addresses shown in a field other than `To:`/`Cc:` (by address or by the name given for it): what a rewrite of `To:`/`Cc:` alone would leave in every copy.",
		func(f *facts) any { return f.vis.Elsewhere }},
	{"visible.in_names", cel.IntType,
		"Visible addresses shown inside a display name, group name or comment (`\"zoe@example.net, bob@example.org\" <survey@brand.example>`).",
		func(f *facts) any { return f.vis.InNames }},
	{"visible.listed", cel.IntType,
		"Visible addresses that are neither addressees nor envelope recipients, shown in a field that lists two or more of them (a customer list in `Reply-To:` or `X-Recipients:`).",
		func(f *facts) any { return f.vis.Listed }},
	{"visible.fields", listOfStrings,
		"The lowercased names of the header fields that show a visible address, sorted (`[\"cc\", \"reply-to\", \"to\"]`).",
		func(f *facts) any { return nonNil(f.vis.Fields) }},
	{"visible.domain_list", listOfStrings,
		"The distinct visible domains, lowercased, sorted.",
		func(f *facts) any { return nonNil(f.vis.Domains) }},
	{"visible.addresses", listOfStrings,
		"The distinct visible addresses, lowercased.",
		func(f *facts) any { return f.visAddrs }},
	{"visible.not_in_envelope", cel.IntType,
		"Visible addresses that are not envelope recipients: shown to everyone but not sent the message.",
		func(f *facts) any { return f.notInEnvelope }},
	{"visible.parse_error", cel.BoolType,
		"Nothing could be made of the header block (it is larger than 8 MiB). A field that does not parse is not an error: every address-like token and every name in it counts as visible. `on_parse_error` decides such a message before any rule runs (its counts would mean nothing), so rules rarely need this.",
		func(f *facts) any { return f.vis.ParseError != "" }},
	{"visible.truncated", cel.BoolType,
		"More than 100,000 addresses were shown; the counts mean \"at least\".",
		func(f *facts) any { return f.vis.Truncated }},
	{"envelope.count", cel.IntType,
		"Envelope recipients (`RCPT TO`).",
		func(f *facts) any { return len(f.in.Recipients) }},
	{"envelope.not_visible", cel.IntType,
		"Distinct envelope recipients no header field shows: the true Bcc recipients.",
		func(f *facts) any { return f.notVisible }},
	{"envelope.external", cel.IntType,
		"Envelope recipients outside `internal_domains`.",
		func(f *facts) any { return f.envExternal }},
	{"envelope.domains", cel.IntType,
		"Distinct organisations of the envelope recipients (as for `visible.domains`: each consumer-domain address its own).",
		func(f *facts) any { return f.envOrgs }},
	{"envelope.consumer", cel.IntType,
		"Envelope recipients at consumer mailbox domains.",
		func(f *facts) any { return f.envConsumer }},
	{"envelope.domain_list", listOfStrings,
		"The distinct envelope recipient domains, lowercased, sorted.",
		func(f *facts) any { return f.envDomains }},
	{"envelope.recipients", listOfStrings,
		"The envelope recipients, lowercased.",
		func(f *facts) any { return f.envAddrs }},
	{"sender", cel.StringType,
		"The envelope sender (`MAIL FROM`), `\"\"` for the null sender.",
		func(f *facts) any { return f.in.Sender }},
	{"sender_domain", cel.StringType,
		"The envelope sender's domain, lowercased (`\"\"` for the null sender).",
		func(f *facts) any { return f.senderDomain }},
	{"client.user", cel.StringType,
		"The SMTP AUTH identity, `\"\"` when the client did not log in.",
		func(f *facts) any { return f.in.User }},
	{"client.ip", cel.StringType,
		"The client's IP address as text (`\"192.0.2.10\"`, `\"2001:db8::1\"`), `\"\"` if unknown.",
		func(f *facts) any { return f.clientIP }},
	{"client.listener", cel.StringType,
		"The name of the listener the message came in on.",
		func(f *facts) any { return f.in.Listener }},
	{"client.messages_last_minute", cel.IntType,
		"Messages the client (its AUTH user, or its IP address without AUTH) sent through bccguard in the last minute, this one included; shared by every replica on PostgreSQL. Counted only while a rule uses one of the `client.*_last_*` variables; 0 in `bccguard policy test`.",
		func(f *facts) any { return f.in.Counts.MessagesLastMinute }},
	{"client.messages_last_hour", cel.IntType,
		"The same over the last hour.",
		func(f *facts) any { return f.in.Counts.MessagesLastHour }},
	{"client.messages_last_day", cel.IntType,
		"The same over the last 24 hours.",
		func(f *facts) any { return f.in.Counts.MessagesLastDay }},
	{"client.recipients_last_minute", cel.IntType,
		"Envelope recipients of the client's messages in the last minute, this message's included (`client.recipients_last_hour > 5000 && visible.count > 1`).",
		func(f *facts) any { return f.in.Counts.RecipientsLastMinute }},
	{"client.recipients_last_hour", cel.IntType,
		"The same over the last hour.",
		func(f *facts) any { return f.in.Counts.RecipientsLastHour }},
	{"client.recipients_last_day", cel.IntType,
		"The same over the last 24 hours.",
		func(f *facts) any { return f.in.Counts.RecipientsLastDay }},
	{"body.addresses", cel.IntType,
		"Distinct email addresses in the body and attachments, in every format the scan reads (text, HTML with entities and `mailto:` links decoded, CSV/TSV, JSON, XML, vCard, iCalendar, XLSX, DOCX, PPTX, ODS, ODT, PDF text, inside ZIP and gzip, attached messages and their headers, MIME part headers), after decoding base64/quoted-printable; the message's own header is not counted.",
		func(f *facts) any { return f.in.Body.Addresses }},
	{"body.phones", cel.IntType,
		"Distinct phone numbers in the body and attachments, valid for their country's numbering plan (numbers without `+` are read in `content.phone_region`).",
		func(f *facts) any { return f.in.Body.Phones }},
	{"body.cards", cel.IntType,
		"Distinct payment card numbers (13-19 digits passing the Luhn check, in an issuer's range).",
		func(f *facts) any { return f.in.Body.Cards }},
	{"body.ibans", cel.IntType,
		"Distinct IBANs (the country's length, mod-97 check).",
		func(f *facts) any { return f.in.Body.IBANs }},
	{"body.records", cel.IntType,
		"Distinct rows of personal data in tables (CSV/TSV, spreadsheets, document and HTML tables, JSON arrays of objects, vCards): a row with two findings, or one finding or personal-data cell plus another under a column whose header names personal data (name, address, street, city, postcode, phone, email, date of birth; English, French, German, Spanish, Italian, Portuguese, Dutch, Chinese, Japanese).",
		func(f *facts) any { return f.in.Body.Records }},
	{"body.truncated", cel.BoolType,
		"A kind reached 100,000 distinct values: its count means \"at least\".",
		func(f *facts) any { return f.in.Body.Truncated }},
	{"body.unscannable", cel.ListType(cel.MapType(cel.StringType, cel.StringType)),
		"What could not be inspected, each `{\"name\": file name or archive path, \"type\": detected type, \"reason\": encrypted|corrupt|size|ratio|entries|depth|time, \"detail\": text}`: `body.unscannable.exists(u, u.reason == \"encrypted\")`.",
		func(f *facts) any { return f.unscannable }},
	{"attachments", cel.ListType(cel.MapType(cel.StringType, cel.DynType)),
		"The attachments, each `{\"name\", \"type\" (detected: csv, xlsx, pdf, zip, ...), \"size\" (decoded bytes), \"scanned\" (bool), \"addresses\", \"phones\", \"cards\", \"ibans\", \"records\"}`: `attachments.exists(a, a.type == \"xlsx\" && a.records > 10)`.",
		func(f *facts) any { return f.attachments }},
	{"body.recipients", cel.IntType,
		"Distinct recipients of the message (envelope and `To:`/`Cc:`) whom the body or an attachment shows, by address or by the display name given for that address (names of two or more words or of six or more letters, matched case-insensitively at word boundaries).",
		func(f *facts) any { return len(f.in.Body.RecipientsShown) }},
	{"body.recipients_by_address", cel.IntType,
		"Recipients the body or an attachment shows by address.",
		func(f *facts) any { return f.in.Body.RecipientsByAddress }},
	{"body.recipients_by_name", cel.IntType,
		"Recipients the body or an attachment shows by name.",
		func(f *facts) any { return f.in.Body.RecipientsByName }},
	{"body.shows_other_recipient", cel.BoolType,
		"Some copy of an explode or bcc would show another envelope recipient in its body or attachments (two or more envelope recipients shown, or one when there are several). Such copies are never made: `on_unsafe_copy` decides.",
		func(f *facts) any { return f.otherShown() > 0 }},
	{"dkim.valid", cel.BoolType,
		"At least one incoming DKIM signature verified (bccguard verifies at the end of DATA, before the policy runs).",
		func(f *facts) any { return f.in.DKIM.Valid }},
	{"dkim.domains", listOfStrings,
		"The `d=` domains of the incoming signatures that verified, lowercased, sorted.",
		func(f *facts) any { return nonNil(f.in.DKIM.Domains) }},
	{"dkim.can_sign", cel.BoolType,
		"bccguard has a DKIM key for the `From:` domain (or a parent domain, or `dkim.fallback_domain`), so the copies it rewrites leave signed. `!dkim.can_sign` with `action: quarantine` holds mail that would otherwise leave unsigned after a rewrite.",
		func(f *facts) any { return f.in.DKIM.CanSign }},
	{"size", cel.IntType,
		"Message size in bytes.",
		func(f *facts) any { return f.in.Size }},
	{"header", cel.MapType(cel.StringType, listOfStrings),
		"Header fields: lowercased name to the list of values, unfolded and RFC 2047-decoded. A missing key is a runtime error, so test first: `\"precedence\" in header && header[\"precedence\"][0] == \"bulk\"`, or `header[?\"precedence\"].orValue([]).exists(v, v == \"bulk\")`.",
		func(f *facts) any { return f.vis.Header }},
}

// nonNil gives CEL an empty list rather than a nil one.
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

var variableByName = func() map[string]*variable {
	m := make(map[string]*variable, len(variables))
	for i := range variables {
		m[variables[i].name] = &variables[i]
	}
	return m
}()

// facts are the values behind the variables for one message, derived once
// per evaluation.
type facts struct {
	in            *Input
	vis           *Visible
	visAddrs      []string
	envAddrs      []string
	envDomains    []string
	envExternal   int
	notInEnvelope int
	notVisible    int
	envOrgs       int
	envConsumer   int
	senderDomain  string
	clientIP      string
	unscannable   []map[string]string
	attachments   []map[string]any
}

func newFacts(in *Input, vis *Visible, internal, consumer domainMatcher) *facts {
	f := &facts{in: in, vis: vis, senderDomain: domainOf(in.Sender)}
	if in.ClientIP.IsValid() {
		f.clientIP = in.ClientIP.Unmap().String()
	}
	f.visAddrs = make([]string, len(vis.Recipients))
	for i, r := range vis.Recipients {
		f.visAddrs[i] = addrKey(r.Address)
	}
	f.notInEnvelope = len(vis.NotInEnvelope(in.Recipients))
	f.notVisible = len(vis.NotVisible(in.Recipients))
	domains := map[string]bool{}
	f.unscannable = []map[string]string{}
	for _, u := range in.Body.Unscannable() {
		f.unscannable = append(f.unscannable, map[string]string{"name": u.Name, "type": u.Type, "reason": u.Reason, "detail": u.Detail})
	}
	f.attachments = []map[string]any{}
	for _, a := range in.Body.Attachments() {
		f.attachments = append(f.attachments, map[string]any{"name": a.Name, "type": a.Type, "size": a.Size, "scanned": a.Scanned,
			"addresses": int64(a.Counts.Addresses), "phones": int64(a.Counts.Phones), "cards": int64(a.Counts.Cards),
			"ibans": int64(a.Counts.IBANs), "records": int64(a.Counts.Records)})
	}
	orgs := map[string]bool{}
	f.envAddrs = make([]string, len(in.Recipients))
	for i, r := range in.Recipients {
		f.envAddrs[i] = addrKey(r)
		d := domainOf(r)
		domains[d] = true
		switch {
		case d == "" || consumer.match(d):
			orgs["address:"+f.envAddrs[i]] = true
			if d != "" {
				f.envConsumer++
			}
		default:
			orgs[d] = true
		}
		if !internal.match(d) {
			f.envExternal++
		}
	}
	f.envOrgs = len(orgs)
	for d := range domains {
		f.envDomains = append(f.envDomains, d)
	}
	slices.Sort(f.envDomains)
	return f
}

// activation hands the facts to CEL by variable name.
type activation struct{ f *facts }

func (a activation) ResolveName(name string) (any, bool) {
	if v, ok := variableByName[name]; ok {
		return v.get(a.f), true
	}
	return nil, false
}

func (a activation) Parent() interpreter.Activation { return nil }
