package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// Dead implements Queue: the message and its reason are written to dead/
// before it leaves the queue, so a crash in between leaves a duplicate dead
// letter at worst, never a lost one.
func (d *Dir) Dead(ctx context.Context, m *Message, reason string) error {
	m.LastError = reason
	b, err := encodeEntry(m)
	if err != nil {
		return fmt.Errorf("outbox: encoding message: %w", err)
	}
	t, err := d.writeFile(b)
	if err != nil {
		return fmt.Errorf("outbox: writing dead letter: %w", err)
	}
	if err := os.Rename(t, filepath.Join(d.path, dirDead, m.ID+msgExt)); err != nil {
		os.Remove(t)
		return fmt.Errorf("outbox: writing dead letter: %w", err)
	}
	if err := d.dirSync(filepath.Join(d.path, dirDead)); err != nil {
		return fmt.Errorf("outbox: syncing spool: %w", err)
	}
	if err := d.finish(m, false); err != nil {
		return fmt.Errorf("outbox: removing dead message: %w", err)
	}
	d.mu.Lock()
	d.dead++
	d.mu.Unlock()
	return nil
}

// DeadLetters returns the dead-lettered messages, each with its reason in
// LastError, for inspection and tests.
func (d *Dir) DeadLetters() ([]*Message, error) {
	entries, err := os.ReadDir(filepath.Join(d.path, dirDead))
	if err != nil {
		return nil, fmt.Errorf("outbox: reading dead letters: %w", err)
	}
	var out []*Message
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), msgExt) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.path, dirDead, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("outbox: reading dead letters: %w", err)
		}
		m, err := decodeEntry(b)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// writeFile writes b to tmp/, fsyncs it and returns the temp path.
func (d *Dir) writeFile(b []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Join(d.path, dirTmp), "w-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// syncDir fsyncs a directory so renames and unlinks in it are durable.
func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
