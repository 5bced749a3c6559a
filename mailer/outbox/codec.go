package outbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// spoolMagic opens every spool file; the version lets the format evolve.
const spoolMagic = "formguard-outbox 1\n"

// maxMetaLen caps the metadata line so a corrupt file cannot make the
// decoder buffer an unbounded line.
const maxMetaLen = 64 << 10

// errCorrupt marks spool content that cannot be decoded.
var errCorrupt = errors.New("outbox: corrupt spool entry")

// encodeEntry renders m as a spool entry: the magic line, one line of JSON
// metadata, then the raw message. JSON escapes newlines inside strings, so
// the metadata is always exactly one line.
func encodeEntry(m *Message) ([]byte, error) {
	meta, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(spoolMagic)+len(meta)+1+len(m.Raw))
	b = append(b, spoolMagic...)
	b = append(b, meta...)
	b = append(b, '\n')
	b = append(b, m.Raw...)
	return b, nil
}

// decodeEntry parses a spool entry. It is the only reader of bytes that
// may have been damaged on disk or written by someone else, so it checks
// everything it relies on.
func decodeEntry(b []byte) (*Message, error) {
	rest, ok := bytes.CutPrefix(b, []byte(spoolMagic))
	if !ok {
		return nil, fmt.Errorf("%w: bad magic", errCorrupt)
	}
	i := bytes.IndexByte(rest, '\n')
	if i < 0 || i > maxMetaLen {
		return nil, fmt.Errorf("%w: no metadata line", errCorrupt)
	}
	m := new(Message)
	if err := json.Unmarshal(rest[:i], m); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", errCorrupt, err)
	}
	m.Raw = rest[i+1:]
	if !validID(m.ID) || m.From == "" || len(m.To) == 0 || len(m.Raw) == 0 || m.Attempts < 0 {
		return nil, fmt.Errorf("%w: incomplete metadata", errCorrupt)
	}
	return m, nil
}

// deadRecord is the metadata kept with a dead letter.
type deadRecord struct {
	*Message
	Reason string `json:"reason"`
}
