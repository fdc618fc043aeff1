// Package harness runs the real bccguard binary between real SMTP peers on
// loopback for the end-to-end tests: it builds the binary once per test
// binary, starts it with a generated configuration on free ports, and
// provides a capturing upstream (a go-smtp server), SMTP clients (go-smtp's,
// a raw line-level one, swaks) and Postfix's smtp-sink and smtp-source as
// independent peers.
//
// Nothing here is a mock: every test talks to the binary over sockets.
package harness
