package content

import (
	"bufio"
	"io"
	"sync"
)

// The scan's buffers are recycled between messages: allocated per message
// they were most of the garbage a small message left (a 4 KiB
// bufio.Reader for the message, one per part, the recorder's window). A
// recycled buffer is reset before use and reads only what the new message
// puts in it, so nothing of one message reaches another's result.

// partReaderSize is the read-ahead of the MIME walk's readers: 4 KiB, what
// go-message's own bufio.NewReader gives (the recorder's window relies on
// it) and enough for the 512 bytes detect peeks at.
const partReaderSize = 4096

var (
	chunkBuffers  = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}
	partReaders   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, partReaderSize) }}
	windowBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}
)

// getReader is a recycled bufio.Reader reading r; putReader gives it back.
func getReader(r io.Reader) *bufio.Reader {
	br := partReaders.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	partReaders.Put(br)
}
