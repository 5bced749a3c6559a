package guard

import (
	"bytes"
	"io"
	"net/http"
)

// bodyReader replays a read body to the wrapped handler.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

// newBody returns a replay reader and an n-byte buffer for a body, in one
// allocation when the body is small (as form posts mostly are).
func newBody(n int) (*bodyReader, []byte) {
	switch {
	case n <= 256:
		x := new(struct {
			bodyReader
			b [256]byte
		})
		return &x.bodyReader, x.b[:n:n]
	case n <= 1024:
		x := new(struct {
			bodyReader
			b [1024]byte
		})
		return &x.bodyReader, x.b[:n:n]
	}
	return new(bodyReader), make([]byte, n)
}

// readBody reads at most max bytes and puts the body back on r.
func readBody(r *http.Request, max int64) ([]byte, *Error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > 0 && r.ContentLength <= max {
		// net/http's body reader ends at Content-Length, so exactly this
		// many bytes can be read.
		br, b := newBody(int(r.ContentLength))
		_, err := io.ReadFull(r.Body, b)
		_ = r.Body.Close()
		if err != nil {
			return nil, ErrMalformed.withf("reading body: %v", err)
		}
		br.Reset(b)
		r.Body = br
		return b, nil
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, max+1))
	_ = r.Body.Close()
	if err != nil {
		return nil, ErrMalformed.withf("reading body: %v", err)
	}
	if n > max {
		return nil, ErrTooLarge.withf("body over %d bytes", max)
	}
	b := buf.Bytes()
	br := &bodyReader{}
	br.Reset(b)
	r.Body = br
	return b, nil
}
