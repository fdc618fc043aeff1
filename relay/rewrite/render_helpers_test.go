package rewrite

import (
	"bufio"
	"io"

	"github.com/bccguard/bccguard/relay/store"
)

// render writes the copy of a stored message for one delivery as delivery
// does (WriteCopy), reading the message from raw from its first byte and
// streaming its body: the reference the render tests, fuzz target and
// benchmark hold the rewrite to.
func render(w io.Writer, raw io.Reader, msg store.Message, d store.Delivery) error {
	src, err := ReadSource(raw, msg)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	if err := WriteCopy(bw, src, raw, d, Options{}); err != nil {
		return err
	}
	return bw.Flush()
}
