package mailer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// FileConfig configures the file transport.
type FileConfig struct {
	// Dir receives one .eml file per message (required); created 0700.
	Dir string
	// Now names files by time. Zero value: time.Now.
	Now func() time.Time
}

// File is a Transport that writes each message, byte for byte as it would
// go on the wire, to Dir as <unix-nanos>-<queue-id-or-random>.eml: written
// to a temporary name, fsynced and renamed, so a reader never sees half a
// message. For development and for handing mail to another system.
type File struct {
	dir string
	now func() time.Time
}

var _ Transport = (*File)(nil)

// NewFile validates cfg and creates Dir.
func NewFile(cfg FileConfig) (*File, error) {
	if cfg.Dir == "" {
		return nil, errors.New("mailer: FileConfig.Dir is required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailer: file transport: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &File{dir: cfg.Dir, now: cfg.Now}, nil
}

// Send implements Transport. The envelope is not written: the message is
// exactly what a relay would receive.
func (f *File) Send(ctx context.Context, env Envelope, raw []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(f.dir, ".tmp-*")
	if err != nil {
		return classify("write", err)
	}
	if _, err = tmp.Write(raw); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return classify("write", err)
	}
	tok, err := randomToken(rand.Reader)
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	name := filepath.Join(f.dir, strconv.FormatInt(f.now().UnixNano(), 10)+"-"+tok+".eml")
	if err := os.Rename(tmp.Name(), name); err != nil {
		os.Remove(tmp.Name())
		return classify("write", err)
	}
	if err := syncDir(f.dir); err != nil {
		return classify("write", err)
	}
	return nil
}

// Close implements Transport.
func (f *File) Close() error { return nil }

func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
