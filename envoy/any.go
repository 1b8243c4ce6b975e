package envoy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	udpatypev1 "github.com/cncf/xds/go/udpa/type/v1"
	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// unpack returns the message inside an Any. Like Envoy, it reads a TypedStruct (xds.type.v3 or
// udpa.type.v1) as the message its type_url names, from its JSON-like value.
func unpack(a *anypb.Any) (proto.Message, error) {
	m, err := anypb.UnmarshalNew(a, proto.UnmarshalOptions{})
	if errors.Is(err, protoregistry.NotFound) {
		return nil, &unlinkedError{url: a.GetTypeUrl()}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.GetTypeUrl(), err)
	}
	switch ts := m.(type) {
	case *xdstypev3.TypedStruct:
		return fromTypedStruct(ts.GetTypeUrl(), ts.GetValue())
	case *udpatypev1.TypedStruct:
		return fromTypedStruct(ts.GetTypeUrl(), ts.GetValue())
	}
	return m, nil
}

func fromTypedStruct(url string, value *structpb.Struct) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(url)
	if errors.Is(err, protoregistry.NotFound) {
		return nil, &unlinkedError{url: url}
	}
	if err != nil {
		return nil, fmt.Errorf("TypedStruct type_url %q: %w", url, err)
	}
	js, err := protojson.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("TypedStruct %q: %w", url, err)
	}
	m := mt.New().Interface()
	if err := protojson.Unmarshal(js, m); err != nil {
		return nil, fmt.Errorf("TypedStruct %q: %w", url, err)
	}
	return m, nil
}

// unlinkedError: an Any, or the TypedStruct inside one, names a message type this binary does
// not link. Envoy may well know it (an extension certbind's linter does not need); a type of a
// package the binary does link is a typo instead (see linkedPackage).
type unlinkedError struct{ url string }

func (e *unlinkedError) Error() string {
	return fmt.Sprintf("unable to resolve %q: not linked into certbind", e.url)
}

// unlinkedType is the type URL of an unlinkedError in err's chain.
func unlinkedType(err error) (string, bool) {
	var u *unlinkedError
	if errors.As(err, &u) {
		return u.url, true
	}
	return "", false
}

// unknownExtension: err says the Any names a type of a package this binary does not link, an
// extension Envoy may know and certbind's linter does not need.
func unknownExtension(err error) bool {
	url, ok := unlinkedType(err)
	return ok && !linkedPackage(url)
}

// pgvError is what every protoc-gen-validate error type implements.
type pgvError interface {
	error
	Field() string
	Reason() string
	Cause() error
}

type leaf struct{ path, msg string }

// pgvLeaves flattens a ValidateAll error of a message of type md found at path into one entry per
// violated rule, each with the proto path of the offending field: PGV names Go fields
// ("FilterChains[0]") and nests causes ("embedded message failed validation | caused by: ...").
func pgvLeaves(md protoreflect.MessageDescriptor, path string, err error) []leaf {
	var out []leaf
	var rec func(md protoreflect.MessageDescriptor, path string, err error)
	rec = func(md protoreflect.MessageDescriptor, path string, err error) {
		if multi, ok := err.(interface{ AllErrors() []error }); ok {
			for _, e := range multi.AllErrors() {
				rec(md, path, e)
			}
			return
		}
		ve, ok := err.(pgvError)
		if !ok {
			out = append(out, leaf{path, err.Error()})
			return
		}
		seg, sub := fieldSegment(md, ve.Field())
		p := joinPath(path, seg)
		cause := ve.Cause()
		if cause != nil && sub != nil && ve.Reason() == "embedded message failed validation" {
			rec(sub, p, cause)
			return
		}
		msg := ve.Reason()
		if cause != nil {
			msg += ": " + cause.Error()
		}
		out = append(out, leaf{p, msg})
	}
	rec(md, path, err)
	return out
}

// fieldSegment turns a PGV field name ("FilterChains[0]", "TypedPerFilterConfig[envoy.x]", "Name")
// of a message md into a path segment in proto names, and the descriptor of the message it holds.
func fieldSegment(md protoreflect.MessageDescriptor, goField string) (string, protoreflect.MessageDescriptor) {
	name, index := goField, ""
	if i := strings.IndexByte(goField, '['); i >= 0 && strings.HasSuffix(goField, "]") {
		name, index = goField[:i], goField[i+1:len(goField)-1]
	}
	if md == nil {
		return goField, nil
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if goCamelCase(string(fd.Name())) != name {
			continue
		}
		seg := string(fd.Name())
		switch {
		case fd.IsMap():
			if index != "" {
				seg += "[" + strconv.Quote(index) + "]"
			}
			return seg, fd.MapValue().Message()
		case fd.IsList():
			if index != "" {
				seg += "[" + index + "]"
			}
			return seg, fd.Message()
		}
		return seg, fd.Message()
	}
	oneofs := md.Oneofs()
	for i := 0; i < oneofs.Len(); i++ {
		if od := oneofs.Get(i); goCamelCase(string(od.Name())) == name {
			return string(od.Name()), nil
		}
	}
	return goField, nil
}

// goCamelCase is protoc-gen-go's name mangling (google.golang.org/protobuf/internal/strs), which
// gives the Go field names PGV reports.
func goCamelCase(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && i+1 < len(s) && isLower(s[i+1]):
		case c == '.':
			b = append(b, '_')
		case c == '_' && (i == 0 || s[i-1] == '.'):
			b = append(b, 'X')
		case c == '_' && i+1 < len(s) && isLower(s[i+1]):
		case '0' <= c && c <= '9':
			b = append(b, c)
		default:
			if isLower(c) {
				c -= 'a' - 'A'
			}
			b = append(b, c)
			for ; i+1 < len(s) && isLower(s[i+1]); i++ {
				b = append(b, s[i+1])
			}
		}
	}
	return string(b)
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
