package envoy

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Sentinels for the two ways Load fails; every error Load returns matches one of them with
// errors.Is and unwraps (errors.As) to *Error values that name the offending field.
var (
	// ErrDecode: the YAML does not decode into Envoy's protos (YAML syntax, unknown field, wrong
	// type, a scalar where a list is expected, an unregistered "@type").
	ErrDecode = errors.New("does not decode")
	// ErrInvalid: the config decodes but breaks a validation rule of Envoy's API
	// (protoc-gen-validate), or a rule Envoy enforces at load (no negative durations).
	ErrInvalid = errors.New("is invalid")
)

// Error is one problem in a config, located by its proto path and, when known, its YAML line.
type Error struct {
	// Path in proto field names: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefix;
	// map entries as typed_per_filter_config["envoy.filters.http.ext_authz"]. Empty for the whole document.
	Path string
	// Line in the YAML source, 0 when unknown (a config built in Go).
	Line int
	// Msg is what is wrong, as Envoy's protos or validation rules say it.
	Msg string
	// Kind is ErrDecode or ErrInvalid.
	Kind error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("envoy: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Kind }

// LoadFile reads and loads an Envoy bootstrap YAML file; see Load.
func LoadFile(path string) (*bootstrapv3.Bootstrap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("envoy: %w", err)
	}
	b, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Load parses an Envoy bootstrap YAML with Envoy's own protos and validates it as Envoy does at
// startup, as far as that is possible offline: YAML -> JSON -> protojson.Unmarshal into a Bootstrap
// (unknown fields and "@type"s are errors), then ValidateAll on the Bootstrap and on the message
// inside every google.protobuf.Any, recursively (ValidateAll stops at an Any), and a check that no
// Duration is negative. The error joins one *Error per problem.
func Load(data []byte) (*bootstrapv3.Bootstrap, error) {
	b, lines, err := decode(data)
	if err != nil {
		return nil, err
	}
	if errs := validate(b, lines); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, nil
}

// decode is Load without validation.
func decode(data []byte) (*bootstrapv3.Bootstrap, *sourceMap, error) {
	js, lines, err := yamlToJSON(data, (&bootstrapv3.Bootstrap{}).ProtoReflect().Descriptor())
	if err != nil {
		return nil, nil, err
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(js, b); err != nil {
		return nil, nil, lines.decodeError(err)
	}
	if len(lines.unlinked) > 0 {
		restoreUnlinked(b.ProtoReflect(), "", lines.unlinked)
	}
	return b, lines, nil
}

// restoreUnlinked gives each Any that the converter decoded as a Struct its real type URL back,
// also inside other Anys (repacked): the bootstrap then says what Envoy would load there, and
// unpacking it fails as unlinked. It reports whether it changed anything below m.
func restoreUnlinked(m protoreflect.Message, path string, unlinked map[string]string) bool {
	changed := false
	walkMessages(m, path, func(m protoreflect.Message, path string) bool {
		a, ok := m.Interface().(*anypb.Any)
		if !ok {
			return true
		}
		if url, ok := unlinked[path]; ok {
			a.TypeUrl, changed = url, true
			return false
		}
		inner, err := anypb.UnmarshalNew(a, proto.UnmarshalOptions{})
		if err != nil || !restoreUnlinked(inner.ProtoReflect(), path, unlinked) {
			return false
		}
		if v, err := (proto.MarshalOptions{Deterministic: true}).Marshal(inner); err == nil {
			a.Value, changed = v, true
		}
		return false
	})
	return changed
}

// protojsonPos matches the position protojson puts in its errors: "proto: (line 12:5): msg",
// "proto: syntax error (line 3:1): msg". protojson randomly uses a non-breaking space after
// "proto:" to keep callers from matching its text exactly; the position itself is stable.
var protojsonPos = regexp.MustCompile(` ?\(line (\d+):\d+\)`)

func (s *sourceMap) decodeError(err error) error {
	msg := strings.TrimLeft(strings.TrimPrefix(err.Error(), "proto:"), " \u00a0")
	e := &Error{Msg: msg, Kind: ErrDecode}
	if m := protojsonPos.FindStringSubmatchIndex(msg); m != nil {
		e.Msg = msg[:m[0]] + msg[m[1]:]
		if n, convErr := strconv.Atoi(msg[m[2]:m[3]]); convErr == nil && n >= 1 && n <= len(s.jsonLines) {
			at := s.jsonLines[n-1]
			e.Path, e.Line = at.path, at.yamlLine
		}
	}
	e.Msg = strings.TrimPrefix(e.Msg, ": ")
	return e
}

// validate runs ValidateAll on m and on every message packed in an Any below it, and checks
// durations. Paths in the errors are proto paths; lines, when lines is not nil, come from the YAML.
func validate(m proto.Message, lines *sourceMap) []error {
	v := validator{lines: lines}
	v.message(m, "")
	return v.errs
}

type validator struct {
	lines *sourceMap
	errs  []error
}

func (v *validator) add(kind error, path, msg string) {
	v.errs = append(v.errs, &Error{Path: path, Line: v.lines.line(path), Msg: msg, Kind: kind})
}

// message validates m (reached at path) with its own rules, then walks it for Anys and durations.
func (v *validator) message(m proto.Message, path string) {
	if pv, ok := m.(interface{ ValidateAll() error }); ok {
		if err := pv.ValidateAll(); err != nil {
			for _, l := range pgvLeaves(m.ProtoReflect().Descriptor(), path, err) {
				v.add(ErrInvalid, l.path, l.msg)
			}
		}
	}
	v.walk(m.ProtoReflect(), path)
}

// walk checks durations below m and hands the content of every Any to message: ValidateAll has
// covered everything else.
func (v *validator) walk(m protoreflect.Message, path string) {
	walkMessages(m, path, func(m protoreflect.Message, path string) bool {
		switch m.Descriptor().FullName() {
		case anyName:
			a, ok := m.Interface().(*anypb.Any)
			if !ok {
				v.add(ErrDecode, path, "google.protobuf.Any of an unexpected Go type")
				return false
			}
			inner, err := unpack(a)
			if err != nil {
				if !unknownExtension(err) {
					v.add(ErrDecode, path, err.Error())
				}
				return false // an extension this binary does not link: Lint warns about it
			}
			v.message(inner, path)
			return false
		case durationName:
			if d, ok := m.Interface().(*durationpb.Duration); ok && (d.GetSeconds() < 0 || d.GetNanos() < 0) {
				// Envoy's MessageUtil::validateDurationFields: "Expected positive duration".
				v.add(ErrInvalid, path, fmt.Sprintf("negative duration %s: Envoy rejects it at load", d.AsDuration()))
			}
			return false
		}
		return true
	})
}

// walkMessages calls visit for m and, while visit returns true, for every message set below it
// (through lists and map values), with its proto path.
func walkMessages(m protoreflect.Message, path string, visit func(m protoreflect.Message, path string) bool) {
	if !visit(m, path) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := val.List()
			for i := 0; i < l.Len(); i++ {
				walkMessages(l.Get(i).Message(), fmt.Sprintf("%s[%d]", joinPath(path, string(fd.Name())), i), visit)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			mp := val.Map()
			var keys []protoreflect.MapKey
			mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			for _, k := range keys {
				walkMessages(mp.Get(k).Message(), mapPath(joinPath(path, string(fd.Name())), k.String()), visit)
			}
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			walkMessages(val.Message(), joinPath(path, string(fd.Name())), visit)
		}
		return true
	})
}

const (
	anyName      protoreflect.FullName = "google.protobuf.Any"
	durationName protoreflect.FullName = "google.protobuf.Duration"
)

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func mapPath(path, key string) string { return path + "[" + strconv.Quote(key) + "]" }
