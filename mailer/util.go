package mailer

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"sync"
)

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// Pools for the request path (Deliver): a rendered message, the template
// outputs and the header reader are needed only until the message is
// queued.
var (
	bufPool    = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
)

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() > 64<<10 {
		return // do not keep a huge message's buffer
	}
	b.Reset()
	bufPool.Put(b)
}

var randReader = rand.Reader
