package mailer

import (
	"bufio"
	"bytes"
	"crypto/rand"
)

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

var randReader = rand.Reader
