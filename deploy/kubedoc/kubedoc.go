// Package kubedoc decodes Kubernetes manifests the way the API server reads them, for the
// tests of deploy/: YAML documents split as kubectl splits them, each decoded strictly into the
// Go type of its apiVersion and kind (sigs.k8s.io/json: case-sensitive field names, no unknown
// and no duplicate fields, at every level).
package kubedoc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Kinds maps each kind a test knows to a constructor of its Go type.
type Kinds map[schema.GroupVersionKind]func() any

// Decode decodes one YAML document strictly into the type of its kind, and returns it with its
// kind and its JSON form.
func (k Kinds) Decode(doc []byte) (any, schema.GroupVersionKind, []byte, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, schema.GroupVersionKind{}, nil, err
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, schema.GroupVersionKind{}, nil, err
	}
	gvk := schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)
	newObj, ok := k[gvk]
	if !ok {
		return nil, gvk, nil, fmt.Errorf("apiVersion %q kind %q: not a kind this test knows", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	if err := DecodeJSONStrict(js, obj); err != nil {
		return nil, gvk, nil, err
	}
	return obj, gvk, js, nil
}

// DecodeJSONStrict decodes as the API server does: field names are case-sensitive, and unknown
// or duplicate fields are errors (encoding/json would take "podselector" for podSelector).
func DecodeJSONStrict(js []byte, into any) error {
	strict, err := sigsjson.UnmarshalStrict(js, into)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// Split returns the non-empty YAML documents of a file or a rendered template: one
// holding only comments or separators is skipped.
func Split(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(doc)
		if err == nil && string(bytes.TrimSpace(js)) == "null" {
			continue
		}
		docs = append(docs, doc)
	}
}
