package mailer

import (
	"bufio"
	"bytes"
	"net/textproto"
	"testing"
)

// writeContent (then a Flush) must write exactly what net/textproto's DotWriter writes, for
// every string up to 8 bytes over the bytes its state machine tells apart,
// and for a real message.
func TestWriteDotMatchesTextproto(t *testing.T) {
	alphabet := []byte{'.', '\r', '\n', 'a'}
	var inputs [][]byte
	var gen func(prefix []byte, n int)
	gen = func(prefix []byte, n int) {
		inputs = append(inputs, bytes.Clone(prefix))
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(append(prefix, c), n-1)
		}
	}
	gen(nil, 8)
	inputs = append(inputs, testRaw(0), []byte(".hidden\r\n..\r\n.\r\nend"), bytes.Repeat([]byte("line\r\n"), 2000))
	for _, in := range inputs {
		var want, got bytes.Buffer
		tw := textproto.NewWriter(bufio.NewWriter(&want))
		dw := tw.DotWriter()
		dw.Write(in)
		dw.Close()
		bw := bufio.NewWriter(&got)
		writeContent(bw, in)
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("writeContent(%q) = %q, textproto writes %q", in, got.Bytes(), want.Bytes())
		}
	}
}
