package envoy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Limits against alias bombs ("billion laughs"): a bootstrap is hundreds of nodes, rarely thousands.
const (
	maxNodes     = 1 << 18
	maxJSONBytes = 64 << 20
)

// sourceMap ties the JSON handed to protojson back to the YAML: which proto path and YAML line each
// JSON line holds, so decode and validation errors can name both.
type sourceMap struct {
	jsonLines []jsonLine
	byPath    map[string]int // proto path -> YAML line of its key
	// unlinked maps the path of each Any whose "@type" names a type of a package this binary
	// does not link to that type URL: the converter hands protojson a Struct in its place.
	unlinked map[string]string
}

type jsonLine struct {
	path     string
	yamlLine int
}

// line is the YAML line of path or, failing that, of its nearest ancestor; 0 if unknown.
func (s *sourceMap) line(path string) int {
	if s == nil {
		return 0
	}
	for p := path; ; p = parentPath(p) {
		if l, ok := s.byPath[p]; ok {
			return l
		}
		if p == "" {
			return 0
		}
	}
}

// parentPath strips the last segment: a.b -> a, a[0] -> a, a["k.x"] -> a.
func parentPath(p string) string {
	switch {
	case strings.HasSuffix(p, `"]`):
		if i := strings.LastIndex(p, `["`); i >= 0 {
			return p[:i]
		}
	case strings.HasSuffix(p, "]"):
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// yamlToJSON converts one YAML document to JSON the way Envoy reads YAML (merge keys and aliases
// resolved, keys tagged !ignore dropped), one key per JSON line. It follows the proto schema from
// root, through the "@type" of every Any, to record each key's proto path (map entries as
// field["key"]) and YAML line.
func yamlToJSON(data []byte, root protoreflect.MessageDescriptor) ([]byte, *sourceMap, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, &Error{Msg: "empty document", Kind: ErrDecode}
		}
		return nil, nil, &Error{Msg: err.Error(), Kind: ErrDecode}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, nil, &Error{Line: extra.Line, Msg: "more than one YAML document", Kind: ErrDecode}
	case !errors.Is(err, io.EOF):
		return nil, nil, &Error{Msg: err.Error(), Kind: ErrDecode}
	}
	if len(doc.Content) == 0 {
		return nil, nil, &Error{Msg: "empty document", Kind: ErrDecode}
	}
	c := &converter{
		src:   &sourceMap{jsonLines: []jsonLine{{path: "", yamlLine: 1}}, byPath: map[string]int{"": 1}},
		nodes: maxNodes,
	}
	if err := c.value(doc.Content[0], "", target{msg: root}); err != nil {
		return nil, nil, err
	}
	return c.buf.Bytes(), c.src, nil
}

type converter struct {
	buf   bytes.Buffer
	src   *sourceMap
	nodes int // budget left
}

// target is what a YAML node decodes into, as far as the schema is known.
type target struct {
	msg   protoreflect.MessageDescriptor // message a mapping decodes into; nil if unknown
	field protoreflect.FieldDescriptor   // set when the node is a whole repeated or map field
	enum  protoreflect.EnumDescriptor    // set when the node is one enum value
}

func (c *converter) newline(path string, yamlLine int) {
	c.buf.WriteByte('\n')
	c.src.jsonLines = append(c.src.jsonLines, jsonLine{path: path, yamlLine: yamlLine})
	if _, ok := c.src.byPath[path]; !ok {
		c.src.byPath[path] = yamlLine
	}
}

func (c *converter) value(n *yaml.Node, path string, t target) error {
	c.nodes--
	if c.nodes < 0 || c.buf.Len() > maxJSONBytes {
		return &Error{Path: path, Line: n.Line, Msg: "document too large (alias expansion?)", Kind: ErrDecode}
	}
	if n.Kind == yaml.AliasNode {
		return c.value(n.Alias, path, t)
	}
	if t.field != nil && t.field.IsList() && n.Kind != yaml.SequenceNode && n.ShortTag() != "!!null" {
		// A single value where a list belongs: Envoy's JSON parser takes it as a list of one
		// (protobuf's legacy JSON syntax); protojson does not, so it gets the list.
		c.buf.WriteByte('[')
		p := path + "[0]"
		c.newline(p, n.Line)
		if err := c.value(n, p, elementOf(t.field)); err != nil {
			return err
		}
		c.buf.WriteByte(']')
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		return c.mapping(n, path, t)
	case yaml.SequenceNode:
		elem := target{}
		if t.field != nil && t.field.IsList() {
			elem = elementOf(t.field)
		}
		c.buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				c.buf.WriteByte(',')
			}
			p := fmt.Sprintf("%s[%d]", path, i)
			c.newline(p, item.Line)
			if err := c.value(item, p, elem); err != nil {
				return err
			}
		}
		c.buf.WriteByte(']')
		return nil
	case yaml.ScalarNode:
		return c.scalar(n, path, t.enum)
	}
	return &Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("unexpected YAML node kind %d", n.Kind), Kind: ErrDecode}
}

func (c *converter) mapping(n *yaml.Node, path string, t target) error {
	ps, err := c.pairs(n, path)
	if err != nil {
		return err
	}
	// Where each key leads: map entries, or fields of a (maybe Any-packed) message.
	child := func(key string) (string, target) { return joinPath(path, key), target{} }
	switch {
	case t.field != nil && t.field.IsMap():
		vt := target{msg: t.field.MapValue().Message()}
		child = func(key string) (string, target) { return mapPath(path, key), vt }
	default:
		md := t.msg
		if md == nil && t.field != nil {
			md = t.field.Message() // an object where a list belongs: protojson will say so
		}
		if md != nil && md.FullName() == anyName {
			var url string
			if md, url = anyContent(ps); url != "" {
				return c.unlinkedAny(ps, path, url)
			}
		}
		if md != nil {
			child = func(key string) (string, target) { return fieldChild(md, path, key) }
		}
	}
	c.buf.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			c.buf.WriteByte(',')
		}
		cp, ct := child(p.key.Value)
		c.newline(cp, p.key.Line)
		k, _ := json.Marshal(p.key.Value)
		c.buf.Write(k)
		c.buf.WriteByte(':')
		if err := c.value(p.val, cp, ct); err != nil {
			return err
		}
	}
	c.buf.WriteByte('}')
	return nil
}

// anyContent is the message type named by the "@type" of an Any's mapping, nil if unknown or
// a well-known type with a special JSON form. A type of a package this binary does not link (an
// extension certbind does not know) is returned as its URL instead, so that the rest of the
// config can still be read; an unknown type of a linked package is a typo, left to protojson to
// refuse.
func anyContent(ps []pair) (protoreflect.MessageDescriptor, string) {
	for _, p := range ps {
		if p.key.Value != "@type" || p.val.Kind != yaml.ScalarNode {
			continue
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByURL(p.val.Value)
		if err != nil {
			if !linkedPackage(p.val.Value) {
				return nil, p.val.Value
			}
			return nil, ""
		}
		if mt.Descriptor().FullName().Parent() == "google.protobuf" {
			return nil, ""
		}
		return mt.Descriptor(), ""
	}
	return nil, ""
}

// unlinkedAny writes an Any of an unlinked type as a google.protobuf.Struct of its fields, which
// protojson can decode, and records the real type URL for decode to put back.
func (c *converter) unlinkedAny(ps []pair, path, url string) error {
	if c.src.unlinked == nil {
		c.src.unlinked = map[string]string{}
	}
	c.src.unlinked[path] = url
	c.buf.WriteString(`{"@type":"type.googleapis.com/google.protobuf.Struct","value":{`)
	first := true
	for _, p := range ps {
		if p.key.Value == "@type" {
			continue
		}
		if !first {
			c.buf.WriteByte(',')
		}
		first = false
		cp := joinPath(path, p.key.Value)
		c.newline(cp, p.key.Line)
		c.writeString(p.key.Value)
		c.buf.WriteByte(':')
		if err := c.value(p.val, cp, target{}); err != nil {
			return err
		}
	}
	c.buf.WriteString("}}")
	return nil
}

// linkedPackage says whether this binary links any file of the proto package of a type URL
// (type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua: envoy.extensions.filters.http.lua.v3).
func linkedPackage(url string) bool {
	name := url[strings.LastIndexByte(url, '/')+1:]
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return false
	}
	found := false
	protoregistry.GlobalFiles.RangeFilesByPackage(protoreflect.FullName(name[:i]), func(protoreflect.FileDescriptor) bool {
		found = true
		return false
	})
	return found
}

// elementOf is the target of one element of a repeated field.
func elementOf(fd protoreflect.FieldDescriptor) target {
	return target{msg: fd.Message(), enum: fd.Enum()}
}

func fieldChild(md protoreflect.MessageDescriptor, path, key string) (string, target) {
	fd := md.Fields().ByName(protoreflect.Name(key))
	if fd == nil {
		fd = md.Fields().ByJSONName(key)
	}
	if fd == nil {
		return joinPath(path, key), target{}
	}
	p := joinPath(path, string(fd.Name()))
	if fd.IsList() || fd.IsMap() {
		return p, target{field: fd}
	}
	return p, target{msg: fd.Message(), enum: fd.Enum()}
}

type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's entries as Envoy sees them: keys tagged !ignore dropped, merge keys (<<)
// expanded with explicit keys winning, then earlier merge sources over later ones.
func (c *converter) pairs(n *yaml.Node, path string) ([]pair, error) {
	var out, merges []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Tag == "!ignore":
			continue
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
			merges = append(merges, pair{k, v})
			continue
		case k.Kind != yaml.ScalarNode:
			return nil, &Error{Path: path, Line: k.Line, Msg: "mapping key is not a scalar", Kind: ErrDecode}
		}
		out = append(out, pair{k, v})
		seen[k.Value] = true
	}
	for _, m := range merges {
		src := resolveAlias(m.val)
		var sources []*yaml.Node
		switch src.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{src}
		case yaml.SequenceNode:
			for _, s := range src.Content {
				sources = append(sources, resolveAlias(s))
			}
		}
		for _, s := range sources {
			if s.Kind != yaml.MappingNode {
				return nil, &Error{Path: path, Line: m.key.Line, Msg: "merge key (<<) needs a mapping or a list of mappings", Kind: ErrDecode}
			}
			c.nodes -= len(s.Content)
			if c.nodes < 0 {
				return nil, &Error{Path: path, Line: m.key.Line, Msg: "document too large (alias expansion?)", Kind: ErrDecode}
			}
			sub, err := c.pairs(s, path)
			if err != nil {
				return nil, err
			}
			for _, p := range sub {
				if !seen[p.key.Value] {
					out = append(out, p)
					seen[p.key.Value] = true
				}
			}
		}
	}
	return out, nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// scalar writes a YAML scalar as the JSON value protojson expects: null, bool and numbers as JSON
// literals (protojson also takes numbers in strings, as Envoy does), everything else as a string.
// An enum value's name is matched ignoring case, as Envoy's loader does
// (case_insensitive_enum_parsing), and written as the enum spells it.
func (c *converter) scalar(n *yaml.Node, path string, enum protoreflect.EnumDescriptor) error {
	bad := func(err error) error {
		return &Error{Path: path, Line: n.Line, Msg: err.Error(), Kind: ErrDecode}
	}
	switch n.ShortTag() {
	case "!!null":
		c.buf.WriteString("null")
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return bad(err)
		}
		c.buf.WriteString(strconv.FormatBool(b))
		return nil
	case "!!int":
		var v any
		if err := n.Decode(&v); err != nil {
			return bad(err)
		}
		switch x := v.(type) {
		case int:
			c.buf.WriteString(strconv.Itoa(x))
		case int64:
			c.buf.WriteString(strconv.FormatInt(x, 10))
		case uint64:
			c.buf.WriteString(strconv.FormatUint(x, 10))
		default:
			c.writeString(n.Value)
		}
		return nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return bad(err)
		}
		switch {
		case math.IsNaN(f):
			c.writeString("NaN")
		case math.IsInf(f, 1):
			c.writeString("Infinity")
		case math.IsInf(f, -1):
			c.writeString("-Infinity")
		default:
			c.buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
		}
		return nil
	case "!!binary":
		c.writeString(strings.Join(strings.Fields(n.Value), ""))
		return nil
	}
	if enum != nil {
		if v := enumValueFold(enum, n.Value); v != nil {
			c.writeString(string(v.Name()))
			return nil
		}
	}
	c.writeString(n.Value)
	return nil
}

// enumValueFold is the value of enum named name, ignoring case; nil if none.
func enumValueFold(enum protoreflect.EnumDescriptor, name string) protoreflect.EnumValueDescriptor {
	if v := enum.Values().ByName(protoreflect.Name(name)); v != nil {
		return v
	}
	vs := enum.Values()
	for i := 0; i < vs.Len(); i++ {
		if strings.EqualFold(string(vs.Get(i).Name()), name) {
			return vs.Get(i)
		}
	}
	return nil
}

func (c *converter) writeString(s string) {
	b, _ := json.Marshal(s)
	c.buf.Write(b)
}
