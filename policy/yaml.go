package policy

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeStrict decodes YAML into out (a pointer to a struct with yaml tags), rejecting unknown
// keys and ill-typed values with errors that name the key path (`clients[2].jwks_file: ...`)
// rather than a line number, so an operator can find the key in any rendering of the file.
//
// The items of the top-level list named deferred are checked like everything else but not
// decoded: they are returned as nodes, for the caller to decode and compile one at a time and
// drop, so a registry of 100,000 clients is never held decoded all at once.
func decodeStrict(data []byte, out any, deferred string) ([]*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	if doc.Kind == 0 { // empty document
		return nil, errors.New("the file is empty")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		root = root.Content[0]
	}
	if root.Tag == "!!null" { // "---" or "~" alone: as empty as an empty file
		return nil, errors.New("the file is empty")
	}
	var errs []error
	ck := checker{fields: map[reflect.Type]map[string]reflect.StructField{}, errs: &errs}
	ck.node(root, reflect.TypeOf(out).Elem(), "")
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var items []*yaml.Node
	if deferred != "" && root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if v := root.Content[i+1]; root.Content[i].Value == deferred && v.Kind == yaml.SequenceNode {
				items = v.Content
				// A new empty list in its place: the original node may be an anchor's.
				root.Content[i+1] = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			}
		}
	}
	if err := root.Decode(out); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	return items, nil
}

var (
	yamlNodeType    = reflect.TypeOf(yaml.Node{})
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// checker walks a document against the type it is decoded into, collecting errors.
type checker struct {
	fields map[reflect.Type]map[string]reflect.StructField // yamlFields of each struct type seen
	errs   *[]error
}

func (ck checker) node(n *yaml.Node, t reflect.Type, path string) {
	errs := ck.errs
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if t == yamlNodeType || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return // taken as a node, checked by whoever reads it
	}
	if n.Tag == "!!null" {
		return
	}
	where := path
	if where == "" {
		where = "(top level)"
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, fmt.Errorf("%s: expected a mapping", where))
			return
		}
		fields, ok := ck.fields[t]
		if !ok {
			fields = yamlFields(t)
			ck.fields[t] = fields
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			f, ok := fields[key]
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s: unknown key", joinPath(path, key)))
				continue
			}
			ck.node(val, f.Type, joinPath(path, key))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			*errs = append(*errs, fmt.Errorf("%s: expected a list", where))
			return
		}
		for i, item := range n.Content {
			at := fmt.Sprintf("%s[%d]", path, i)
			// yaml.v3 drops a null item from the decoded list, which would shift every later
			// item's index away from the one errors name, and silently lose the entry.
			if item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if item.Tag == "!!null" {
				*errs = append(*errs, fmt.Errorf("%s: empty entry", at))
				continue
			}
			ck.node(item, t.Elem(), at)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, fmt.Errorf("%s: expected a mapping", where))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			ck.node(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			*errs = append(*errs, fmt.Errorf("%s: expected a single value", where))
			return
		}
		if t.Kind() == reflect.String && n.Tag == "!!str" {
			return // a string scalar decodes into a string; spares a decoder per value
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %q is not a valid %s", where, n.Value, kindName(t)))
		}
	}
}

func kindName(t reflect.Type) string {
	switch {
	case t.String() == "time.Duration":
		return "duration (e.g. 5s, 2m)"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "integer"
	default:
		return t.Kind().String()
	}
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f
	}
	return fields
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeStreamed decodes like decodeStrict, holding the document as yaml.Nodes only
// listChunk items of the top-level list key at a time: the document with that list emptied is
// decoded first, then the list's items in groups, each group checked (its errors naming the
// item's index in the whole list) and decoded into items before the next is parsed. yaml.v3
// builds the whole document as nodes before decoding anything, about 1.7 KB per registered
// client, so a registry of 100,000 would otherwise pass through 170 MB of nodes.
//
// It works on the text, so only on documents of a plain shape: key at column 0 holding a block
// sequence, no anchors or aliases in it, no tabs, carriage returns, directives or document
// markers anywhere. ok is false whenever the shape is not that, or anything in it fails to
// parse or check: the caller then decodes the whole document with decodeStrict, which reports
// the errors. Everything ok reports was checked exactly as decodeStrict checks it.
func decodeStreamed[T any](data []byte, out any, key string, items *[]T) (ok bool) {
	rest, bounds, line, count, ok := splitList(data, key, listChunk)
	if !ok {
		return false
	}
	var doc yaml.Node
	if yaml.Unmarshal(rest, &doc) != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return false
	}
	root := doc.Content[0]
	if !emptyListAt(root, key, line) {
		return false // the key line was not the top-level key (inside a quoted scalar, say)
	}
	var errs []error
	ck := checker{fields: map[reflect.Type]map[string]reflect.StructField{}, errs: &errs}
	ck.node(root, reflect.TypeOf(out).Elem(), "")
	if len(errs) > 0 || root.Decode(out) != nil {
		return false
	}
	// After out is decoded: items may be one of its fields, which that has just set to the
	// empty list.
	*items = make([]T, 0, count) // lines that look like items: at least as many as there are
	itemType := reflect.TypeOf(items).Elem().Elem()
	n := 0
	chunk := []byte(key + ":\n")
	for g := 0; g+1 < len(bounds); g++ {
		chunk = append(chunk[:len(key)+2], data[bounds[g]:bounds[g+1]]...)
		var d yaml.Node
		if yaml.Unmarshal(chunk, &d) != nil || d.Kind != yaml.DocumentNode || len(d.Content) != 1 {
			return false
		}
		m := d.Content[0]
		if m.Kind != yaml.MappingNode || len(m.Content) != 2 || m.Content[0].Value != key || m.Content[1].Kind != yaml.SequenceNode {
			return false
		}
		for _, item := range m.Content[1].Content {
			if item.Tag == "!!null" {
				return false
			}
			ck.node(item, itemType, key+"["+strconv.Itoa(n)+"]")
			if len(errs) > 0 {
				return false
			}
			var v T
			if item.Decode(&v) != nil {
				return false
			}
			*items = append(*items, v)
			n++
		}
	}
	return true
}

// listChunk is how many list items decodeStreamed parses at a time (a variable for tests).
var listChunk = 1000

// splitList finds the top-level block sequence under key and returns the document without it
// (written "key: []" on the line key was, line, counted from 1), the byte offsets in data
// where groups of at most per items start, followed by the offset where the sequence ends, and
// the number of items. ok
// is false when the document is not of the plain shape decodeStreamed needs.
func splitList(data []byte, key string, per int) (rest []byte, bounds []int, line, items int, ok bool) {
	if bytes.ContainsAny(data, "\t\r") {
		return nil, nil, 0, 0, false
	}
	// Lines as offsets: line i is data[off[i]:off[i+1]].
	head, headEnd, n := -1, 0, 0
	for off := 0; off < len(data); n++ {
		next := len(data)
		if j := bytes.IndexByte(data[off:], '\n'); j >= 0 {
			next = off + j + 1
		}
		l := data[off:next]
		if bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("...")) || bytes.HasPrefix(l, []byte("%")) {
			return nil, nil, 0, 0, false
		}
		if after, found := bytes.CutPrefix(l, []byte(key+":")); found {
			if t := bytes.TrimSpace(after); len(t) == 0 || t[0] == '#' {
				if head >= 0 {
					return nil, nil, 0, 0, false
				}
				head, line, headEnd = off, n+1, next
			}
		}
		off = next
	}
	if head < 0 {
		return nil, nil, 0, 0, false
	}
	indent, end := -1, len(data)
	for off := headEnd; off < len(data); {
		next := len(data)
		if j := bytes.IndexByte(data[off:], '\n'); j >= 0 {
			next = off + j + 1
		}
		l := data[off:next]
		t := bytes.TrimLeft(l, " ")
		if c := bytes.TrimSpace(t); len(c) == 0 || c[0] == '#' {
			off = next
			continue
		}
		ind := len(l) - len(t)
		if indent < 0 {
			if !bytes.HasPrefix(t, []byte("- ")) {
				return nil, nil, 0, 0, false
			}
			indent = ind
		}
		switch {
		case ind > indent:
		case ind == indent && bytes.HasPrefix(t, []byte("- ")):
			if items%per == 0 {
				bounds = append(bounds, off)
			}
			items++
		default:
			end = off
		}
		if end != len(data) {
			break
		}
		off = next
	}
	if items == 0 || bytes.ContainsAny(data[bounds[0]:end], "&*") { // anchors and aliases cannot cross groups
		return nil, nil, 0, 0, false
	}
	rest = make([]byte, 0, head+len(key)+5+len(data)-end)
	rest = append(append(append(rest, data[:head]...), key+": []\n"...), data[end:]...)
	return rest, append(bounds, end), line, items, true
}

// emptyListAt reports whether root is a mapping whose key holds an empty sequence written on
// line.
func emptyListAt(root *yaml.Node, key string, line int) bool {
	if root.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value == key {
			return k.Line == line && k.Column == 1 && v.Kind == yaml.SequenceNode && len(v.Content) == 0
		}
	}
	return false
}
