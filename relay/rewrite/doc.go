// Package rewrite makes the copies of a stored message that bccguard
// delivers: it renders a copy from the stored original with the header
// edits of package edits (the body is streamed unchanged), keeps the source
// cache that reads a message once for all its copies, and runs the DKIM
// signing pass over a copy.
package rewrite
