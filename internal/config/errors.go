package config

import (
	"errors"
	"fmt"
	"regexp"
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

// keyNode is one key path of a YAML document ("forms.contact.to[1]")
// with its key node (nil for a list item) and value node.
type keyNode struct {
	path       string
	key, value *yaml.Node
}

func (k keyNode) line() int {
	if k.key != nil {
		return k.key.Line
	}
	return k.value.Line
}

// keyNodes lists every key path of the document, parents first.
func keyNodes(root *yaml.Node) []keyNode {
	var out []keyNode
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				out = append(out, keyNode{p, n.Content[i], n.Content[i+1]})
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				out = append(out, keyNode{p, nil, c})
				walk(c, p)
			}
		}
	}
	if root != nil {
		walk(root, "")
	}
	return out
}

// lineOf finds the line of the key path in a decoded YAML document, or of
// its deepest present ancestor; 0 when the document does not mention it.
func lineOf(root *yaml.Node, path string) int {
	keys := keyNodes(root)
	for path != "" {
		for _, k := range keys {
			if k.path == path {
				return k.line()
			}
		}
		path = path[:max(0, strings.LastIndexAny(path, ".["))]
	}
	return 0
}

// nodeError is an UnmarshalYAML error the decoder collects with the
// others, placed at n so that decodeError can name its key.
func nodeError(n *yaml.Node, err error) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d column %d: %v", n.Line, n.Column, err)}}
}

var (
	decodeErrRE  = regexp.MustCompile(`^line (\d+)(?: column (\d+))?: (.*)$`)
	unknownKeyRE = regexp.MustCompile(`^field (\S+) not found in type`)
	wrongTypeRE  = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `([^`]*)`)? into (.+)$")
)

// decodeError reports the strict decoder's errors under their key paths,
// in words rather than Go types; false when err is not a *yaml.TypeError.
func (p *problems) decodeError(err error) bool {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return false
	}
	for _, s := range te.Errors {
		m := decodeErrRE.FindStringSubmatch(s)
		if m == nil {
			p.errs = append(p.errs, &Error{File: p.file, Msg: s})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		msg, hint := m[3], ""
		if u := unknownKeyRE.FindStringSubmatch(msg); u != nil {
			msg, hint = "unknown key", u[1]
		} else if w := wrongTypeRE.FindStringSubmatch(msg); w != nil {
			msg, hint = wrongType(w[1], w[2], w[3]), strings.TrimSuffix(w[2], "...")
			if w[1] == "seq" || w[1] == "map" {
				hint = "!!" + w[1]
			}
		}
		p.errs = append(p.errs, &Error{File: p.file, Line: line, Path: pathAt(p.root, line, col, hint), Msg: msg})
	}
	return true
}

// wrongType says what a key wants when given a YAML value of the wrong
// kind.
func wrongType(tag, value, goType string) string {
	got := map[string]string{"seq": "a list", "map": "a mapping", "null": "nothing"}[tag]
	if got == "" {
		got = strconv.Quote(strings.TrimSuffix(value, "..."))
	}
	want := "a mapping (key: value)"
	switch {
	case goType == "time.Duration":
		want = "a duration such as 30s, 5m or 2h"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		want = "a whole number"
	case goType == "float64":
		want = "a number"
	case goType == "bool":
		want = "true or false"
	case goType == "string":
		want = "a single value"
	case strings.HasPrefix(goType, "[]"):
		want = "a list"
	}
	return "want " + want + ", not " + got
}

// pathAt finds the key path of a decoding error at line (and column, when
// known). Several keys can share a line in flow style; hint (the key or
// value named by the error, or !!seq / !!map) picks one, else the deepest.
func pathAt(root *yaml.Node, line, col int, hint string) string {
	fallback := ""
	for _, k := range keyNodes(root) {
		v := k.value
		switch {
		case col > 0 && v.Line == line && v.Column == col:
			return k.path
		case k.line() != line:
		case hint != "" && (k.key != nil && k.key.Value == hint || v.Kind == yaml.ScalarNode && strings.HasPrefix(v.Value, hint)),
			hint == "!!seq" && v.Kind == yaml.SequenceNode, hint == "!!map" && v.Kind == yaml.MappingNode:
			return k.path
		default:
			fallback = k.path
		}
	}
	return fallback
}
