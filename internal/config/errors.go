package config

import (
	"errors"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every validation error (errors.Is).
var ErrInvalid = errors.New("config: invalid")

// Error is one problem with the configuration: the key path it concerns,
// the file and line it came from when known, or the environment variable
// that set it.
type Error struct {
	File string // config file name ("built-in demo" for the embedded one)
	Line int    // 1-based line of the key in File; 0 when unknown
	Env  string // environment variable that set the value, if any
	Path string // key path, e.g. forms.contact.to[0]
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		if e.Env != "" {
			b.WriteString(" (from " + e.Env + ")")
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// problems collects validation errors so that all are reported at once.
type problems struct {
	file string
	root *yaml.Node
	env  map[string]string // path → environment variable that set it
	errs []error
}

func (p *problems) add(path, msg string) {
	e := &Error{File: p.file, Path: path, Msg: msg, Env: p.env[path]}
	if e.Env == "" {
		e.Line = lineOf(p.root, path)
	}
	p.errs = append(p.errs, e)
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// lineOf finds the line of the key path ("forms.contact.to[1]") in a
// decoded YAML document, or of its deepest present ancestor; 0 when the
// document does not mention it at all.
func lineOf(root *yaml.Node, path string) int {
	if root == nil {
		return 0
	}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range splitPath(path) {
		next := (*yaml.Node)(nil)
		switch {
		case n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		case n.Kind == yaml.SequenceNode:
			if i, err := strconv.Atoi(part); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

// splitPath turns "forms.contact.to[1]" into [forms contact to 1].
func splitPath(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, ".") {
		for {
			i := strings.IndexByte(seg, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				out = append(out, seg[:i])
			}
			j := strings.IndexByte(seg[i:], ']')
			if j < 0 {
				break
			}
			out = append(out, seg[i+1:i+j])
			seg = seg[i+j+1:]
		}
		if seg != "" {
			out = append(out, seg)
		}
	}
	return out
}
