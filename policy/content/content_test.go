package content_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/policy/content"
	ct "github.com/bccguard/bccguard/policy/content/contenttest"
)

// scan runs the content scan over a whole message.
func scan(t testing.TB, msg []byte, w content.Watch) content.Result {
	t.Helper()
	s := content.New(content.Options{PhoneRegion: "GB", TempDir: t.TempDir(), Watch: w})
	s.Message(bytes.NewReader(msg))
	return s.Result()
}

// attachment returns the report of the one attachment.
func attachment(t *testing.T, r content.Result) content.Part {
	t.Helper()
	var parts []content.Part
	for _, p := range r.Parts {
		if p.Attachment {
			parts = append(parts, p)
		}
	}
	if len(parts) != 1 {
		t.Fatalf("want one attachment reported, got %+v", r.Parts)
	}
	return parts[0]
}

// Golden tests: each export format, with each kind of finding, counts
// exactly what it holds, detected by content under a generic type.
func TestFormats(t *testing.T) {
	people := ct.People(200)
	order := ct.Table(people, ct.OrderExport)
	nameAddr := ct.Table(people, ct.NameAddress)
	payments := ct.Table(people[:40], []ct.Column{ct.ColName, ct.ColCard, ct.ColIBAN})
	full := content.Counts{Addresses: 200, Phones: 200, Records: 200}
	tests := []struct {
		name, file string
		data       []byte
		typ        string
		want       content.Counts
	}{
		{"csv", "customers.csv", ct.CSV(order, ','), "csv", full},
		{"csv semicolons", "export.txt", ct.CSV(order, ';'), "text", content.Counts{Addresses: 200, Phones: 200}},
		{"tsv", "customers.tsv", ct.CSV(order, '\t'), "tsv", full},
		{"csv without a name", "data", ct.CSV(order, ','), "csv", full},
		{"name and address csv", "addresses.csv", ct.CSV(nameAddr, ','), "csv", content.Counts{Records: 200}},
		{"payments csv", "payments.csv", ct.CSV(payments, ','), "csv", content.Counts{Cards: 40, IBANs: 40, Records: 40}},
		{"json", "customers.json", ct.JSON(order), "json", full},
		{"ndjson", "customers.ndjson", ct.NDJSON(order), "json", full},
		{"json sniffed", "dump", ct.JSON(order), "json", full},
		{"xml", "customers.xml", ct.XML(order), "xml", content.Counts{Addresses: 200, Phones: 200}},
		{"vcard", "contacts.vcf", ct.VCard(people), "vcard", full},
		{"icalendar", "invite.ics", ct.ICal(people), "icalendar", content.Counts{Addresses: 200}},
		{"html table", "customers.html", ct.HTMLTable(order), "html", full},
		{"xlsx", "customers.xlsx", ct.XLSX(order), "xlsx", full},
		{"xlsx name and address", "addresses.xlsx", ct.XLSX(nameAddr), "xlsx", content.Counts{Records: 200}},
		{"docx", "customers.docx", ct.DOCX(order), "docx", full},
		{"pptx", "customers.pptx", ct.PPTX(order), "pptx", full},
		{"ods", "customers.ods", ct.ODS(order), "ods", full},
		{"odt", "customers.odt", ct.ODT(order), "odt", full},
		{"pdf", "report.pdf", ct.PDF(order), "pdf", content.Counts{Addresses: 200, Phones: 200}},
		{"zip of csv", "export.zip", ct.Zip(ct.Entry{Name: "customers.csv", Data: ct.CSV(order, ',')}), "zip", full},
		{"zip of xlsx", "export.zip", ct.Zip(ct.Entry{Name: "export/customers.xlsx", Data: ct.XLSX(order)}), "zip", full},
		{"nested zip", "export.zip", ct.Zip(ct.Entry{Name: "inner.zip", Data: ct.Zip(ct.Entry{Name: "c.json", Data: ct.JSON(order)})}), "zip", full},
		{"csv.gz", "customers.csv.gz", ct.Gzip("customers.csv", ct.CSV(order, ',')), "gzip", full},
		{"gzip without a name", "dump.gz", ct.Gzip("", ct.NDJSON(order)), "gzip", full},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := ct.Message("export", "Attached.", ct.Attachment{Name: tc.file, Data: tc.data})
			r := scan(t, msg, content.Watch{})
			a := attachment(t, r)
			if a.Type != tc.typ || !a.Scanned || len(a.Unscannable) > 0 {
				t.Errorf("type %q scanned %v unscannable %+v, want %q scanned", a.Type, a.Scanned, a.Unscannable, tc.typ)
			}
			if a.Counts != tc.want || r.Totals != tc.want {
				t.Errorf("counts %+v (totals %+v), want %+v", a.Counts, r.Totals, tc.want)
			}
		})
	}
}

// Look-alikes count nothing, or stay far under the built-in thresholds.
func TestLookAlikes(t *testing.T) {
	var notCards strings.Builder
	for _, n := range ct.NotCards(60) {
		fmt.Fprintf(&notCards, "Order reference %s\r\n", n)
	}
	newsletter := "<html><body><h1>Autumn sale</h1><p>Up to 30% off garden furniture, from 19.99 until 2026-12-24.</p>" +
		"<p>Questions? Call us on +44 20 7946 0555 or write to <a href=\"mailto:help@brand.example\">help@brand.example</a>.</p>" +
		"<p>Order #100234567 ships with tracking 1Z999AA10123456784.</p><p>Brand Ltd, 1 Market Street, Springfield SW1A 1AA</p></body></html>"
	invoice := ct.CSV([][]string{{"Item", "Qty", "Unit price", "VAT", "Total"},
		{"Garden chair", "4", "49.99", "20%", "239.95"}, {"Parasol", "1", "89.00", "20%", "106.80"},
		{"Delivery", "1", "9.95", "20%", "11.94"}}, ',')
	contact := "Best regards,\r\nJane Doe\r\nHead of Sales, Brand Ltd\r\nT +44 20 7946 0123 | M +44 7700 900123\r\n" +
		"jane.doe@brand.example | www.brand.example\r\n1 Market Street, Springfield SW1A 1AA\r\nIBAN GB33BUKB20201555555555\r\n"
	tests := []struct {
		name string
		att  ct.Attachment
		text string
		max  content.Counts // upper bounds
	}{
		{name: "catalogue csv", att: ct.Attachment{Name: "catalogue.csv", Data: ct.CSV(ct.Catalogue(300), ',')}},
		{name: "catalogue xlsx", att: ct.Attachment{Name: "catalogue.xlsx", Data: ct.XLSX(ct.Catalogue(300))}},
		{name: "catalogue pdf", att: ct.Attachment{Name: "catalogue.pdf", Data: ct.PDF(ct.Catalogue(300))}},
		{name: "16 digits failing luhn", text: notCards.String()},
		{name: "newsletter", att: ct.Attachment{Name: "newsletter.html", Type: "text/html", Data: []byte(newsletter)},
			max: content.Counts{Addresses: 1, Phones: 1}},
		{name: "invoice", att: ct.Attachment{Name: "invoice.csv", Data: invoice}},
		{name: "contact block", text: contact, max: content.Counts{Addresses: 1, Phones: 2, IBANs: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var atts []ct.Attachment
			if tc.att.Data != nil {
				atts = append(atts, tc.att)
			}
			r := scan(t, ct.Message("look-alike", tc.text, atts...), content.Watch{})
			for _, k := range content.Kinds {
				if got, lim := r.Totals.Get(k), tc.max.Get(k); got > lim {
					t.Errorf("%s: %d, want at most %d", k, got, lim)
				}
			}
			if u := r.Unscannable(); len(u) > 0 {
				t.Errorf("unscannable: %+v", u)
			}
		})
	}
}

// Samples are masked; no full value appears anywhere in the report.
func TestMaskedSamples(t *testing.T) {
	people := ct.People(5)
	rows := ct.Table(people, []ct.Column{ct.ColName, ct.ColEmail, ct.ColPhone, ct.ColCard, ct.ColIBAN})
	r := scan(t, ct.Message("x", "", ct.Attachment{Name: "c.csv", Data: ct.CSV(rows, ',')}), content.Watch{})
	a := attachment(t, r)
	want := map[string]string{"email": "cu…@ex…", "phone": "+44 20 **** *000", "card": "**** **** **** ", "iban": "GB"}
	for kind, prefix := range want {
		s := a.Samples[kind]
		if len(s) == 0 || len(s) > 3 || !strings.HasPrefix(s[0], prefix) {
			t.Errorf("%s samples %q, want up to 3 starting %q", kind, s, prefix)
		}
	}
	dump := fmt.Sprintf("%+v", r)
	for _, p := range people {
		for _, v := range []string{p.Email, p.Phone, p.Card, p.IBAN, strings.ReplaceAll(p.Phone, " ", ""), p.Card[4:], p.IBAN[4:]} {
			if strings.Contains(dump, v) {
				t.Errorf("the report holds %q in clear", v)
			}
		}
	}
}

// A message inside a ZIP counts for the ZIP, with its header and parts;
// an attached message's parts are reported on their own.
func TestMessagesInside(t *testing.T) {
	csv := ct.CSV(ct.Table(ct.People(60), ct.OrderExport), ',')
	eml := ct.MessageTo("Zoe <zoe@example.org>", "fwd", "see", ct.Attachment{Name: "c.csv", Data: csv})
	r := scan(t, ct.Message("x", "", ct.Attachment{Name: "mail.zip", Data: ct.Zip(ct.Entry{Name: "old/export.eml", Data: eml})}), content.Watch{})
	a := attachment(t, r)
	if a.Type != "zip" || a.Counts.Records != 60 || a.Counts.Addresses != 62 {
		t.Errorf("the ZIP holding a message: %+v, want 60 records and 62 addresses (with the inner header's)", a)
	}
	r = scan(t, ct.Message("x", "", ct.Attachment{Name: "export.eml", Type: "message/rfc822",
		Data: bytes.ReplaceAll(eml, []byte("=_part"), []byte("=_inner")), Raw: true}), content.Watch{})
	var names []string
	for _, p := range r.Parts {
		names = append(names, fmt.Sprintf("%s:%s:%d", p.Name, p.Type, p.Counts.Records))
	}
	if strings.Join(names, " ") != "export.eml:message:0 c.csv:csv:60" || r.Totals.Addresses != 62 {
		t.Errorf("an attached message: parts %v, totals %+v", names, r.Totals)
	}
}
