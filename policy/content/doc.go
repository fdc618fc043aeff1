// Package content finds what a message's body and attachments contain:
// email addresses, phone numbers, payment card numbers, IBANs and records
// (table rows of personal data), in text, HTML, CSV/TSV, JSON, XML,
// vCard, iCalendar, OOXML (XLSX, DOCX, PPTX), OpenDocument (ODS, ODT),
// PDF, ZIP and gzip.
//
// Everything is read as a stream and bounded (Limits): a part that cannot
// be read within the bounds, or is encrypted or corrupt, is reported as
// unscannable with its reason, never as "nothing found". Values are
// counted distinct by a hash and never kept: the only form in which a
// finding leaves this package is a masked sample (an…@ex…).
package content
