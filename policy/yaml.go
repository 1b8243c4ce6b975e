package policy

import (
	"errors"
	"fmt"
	"reflect"
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

var yamlNodeType = reflect.TypeOf(yaml.Node{})

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
	if t == yamlNodeType || t.Kind() == reflect.Interface {
		return
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
