// Package harness runs the real bccguard binary between real SMTP peers on
// loopback for the end-to-end tests: it builds the binary once per test
// binary, starts it with a generated configuration on free ports, and
// provides a capturing upstream (a go-smtp server), SMTP clients (go-smtp's,
// a raw line-level one, swaks, Perl's Net::SMTP) and, as independent peers,
// Postfix's smtp-sink and smtp-source and a throwaway Postfix MTA.
//
// Nothing here is a mock: every test talks to the binary over sockets.
package harness
