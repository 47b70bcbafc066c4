package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// locate explains a failed strict parse with field paths. protojson stops at the first problem
// and names it by line:column of the JSON text (for a YAML file, of the converted JSON, which
// the user never sees); locate walks the decoded document along the message descriptors and
// reports every unknown field, unknown "@type" and wrongly typed value with its path
// (resources[0].filter_chains[0].filter_chain_match.server_name). It follows protojson's
// rules (field names as in the .proto or as lowerCamelCase JSON names, numbers also as
// strings, null = unset) but protojson remains the authority: its error is always reported too.
func locate(doc any, md protoreflect.MessageDescriptor, path string) []string {
	l := &locator{}
	l.message(doc, md, path)
	return l.found
}

type locator struct{ found []string }

func (l *locator) errorf(path, format string, args ...any) {
	if len(l.found) < 50 {
		l.found = append(l.found, withPath(path, fmt.Sprintf(format, args...)))
	}
}

var durationRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]{1,9})?s$`)

// Well-known types whose JSON form is not an object of their fields.
var wrapperTypes = map[protoreflect.FullName]bool{
	"google.protobuf.DoubleValue": true, "google.protobuf.FloatValue": true,
	"google.protobuf.Int64Value": true, "google.protobuf.UInt64Value": true,
	"google.protobuf.Int32Value": true, "google.protobuf.UInt32Value": true,
	"google.protobuf.BoolValue": true, "google.protobuf.StringValue": true,
	"google.protobuf.BytesValue": true,
}

func specialJSON(n protoreflect.FullName) bool {
	if wrapperTypes[n] {
		return true
	}
	switch n {
	case "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask",
		"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Empty":
		return true
	}
	return false
}

func (l *locator) message(v any, md protoreflect.MessageDescriptor, path string) {
	n := md.FullName()
	switch {
	case n == "google.protobuf.Any":
		obj, ok := v.(map[string]any)
		if !ok {
			l.errorf(path, "expected an object with \"@type\" (google.protobuf.Any), got %s", jsonKind(v))
			return
		}
		t, ok := obj["@type"].(string)
		if !ok {
			l.errorf(path, "missing \"@type\" (google.protobuf.Any)")
			return
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByURL(t)
		if err != nil {
			l.errorf(join(path, "@type"), "unknown type %q: not an Envoy v3 API type (a v2 type, a contrib-only extension, or a typo?)", t)
			return
		}
		if specialJSON(mt.Descriptor().FullName()) {
			l.message(obj["value"], mt.Descriptor(), join(path, "value"))
			return
		}
		rest := map[string]any{}
		for k, val := range obj {
			if k != "@type" {
				rest[k] = val
			}
		}
		l.message(rest, mt.Descriptor(), path)
		return
	case n == "google.protobuf.Duration":
		if s, ok := v.(string); !ok || !durationRE.MatchString(s) {
			l.errorf(path, "expected a duration string such as \"5s\" or \"0.250s\" (google.protobuf.Duration), got %s", describe(v))
		}
		return
	case n == "google.protobuf.Timestamp" || n == "google.protobuf.FieldMask":
		if _, ok := v.(string); !ok {
			l.errorf(path, "expected a string (%s), got %s", n, describe(v))
		}
		return
	case n == "google.protobuf.Value":
		return
	case n == "google.protobuf.ListValue":
		if _, ok := v.([]any); !ok {
			l.errorf(path, "expected a list (google.protobuf.ListValue), got %s", describe(v))
		}
		return
	case n == "google.protobuf.Struct":
		if _, ok := v.(map[string]any); !ok {
			l.errorf(path, "expected an object (google.protobuf.Struct), got %s", describe(v))
		}
		return
	case wrapperTypes[n]:
		l.scalar(v, md.Fields().ByName("value"), path)
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		l.errorf(path, "expected an object (%s), got %s", n, describe(v))
		return
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	oneofSet := map[protoreflect.FullName]string{}
	for _, k := range keys {
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(k))
		}
		if fd == nil {
			l.errorf(join(path, k), "unknown field %q in %s%s", k, n, suggest(md, k))
			continue
		}
		fpath := join(path, string(fd.Name()))
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() && obj[k] != nil {
			if other, dup := oneofSet[od.FullName()]; dup {
				l.errorf(fpath, "%s and %s are both set, but they are alternatives (oneof %s)", other, fd.Name(), od.Name())
			}
			oneofSet[od.FullName()] = string(fd.Name())
		}
		l.field(obj[k], fd, fpath)
	}
}

func suggest(md protoreflect.MessageDescriptor, k string) string {
	var names []string
	for i := 0; i < md.Fields().Len(); i++ {
		names = append(names, string(md.Fields().Get(i).Name()))
	}
	for _, n := range names {
		if squash(n) == squash(k) || strings.Contains(n, k) || strings.Contains(k, n) {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	}
	if len(names) > 40 {
		return ""
	}
	return " (fields: " + strings.Join(names, ", ") + ")"
}

func (l *locator) field(v any, fd protoreflect.FieldDescriptor, path string) {
	if v == nil {
		return // null means "not set" in protojson
	}
	switch {
	case fd.IsList():
		arr, ok := v.([]any)
		if !ok {
			l.errorf(path, "expected a list (repeated %s), got %s", kindName(fd), describe(v))
			return
		}
		for i, e := range arr {
			l.single(e, fd, fmt.Sprintf("%s[%d]", path, i))
		}
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			l.errorf(path, "expected an object (map<%s, %s>), got %s", fd.MapKey().Kind(), kindName(fd.MapValue()), describe(v))
			return
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kp := fmt.Sprintf("%s[%q]", path, k)
			if fd.MapKey().Kind() != protoreflect.StringKind {
				l.scalar(k, fd.MapKey(), kp+" (key)")
			}
			l.single(obj[k], fd.MapValue(), kp)
		}
	default:
		l.single(v, fd, path)
	}
}

func (l *locator) single(v any, fd protoreflect.FieldDescriptor, path string) {
	if fd.Message() != nil {
		if v == nil && fd.Message().FullName() != "google.protobuf.Value" {
			if fd.IsList() {
				l.errorf(path, "null is not allowed in a list")
			}
			return
		}
		l.message(v, fd.Message(), path)
		return
	}
	l.scalar(v, fd, path)
}

func kindName(fd protoreflect.FieldDescriptor) string {
	if fd.Message() != nil {
		return string(fd.Message().FullName())
	}
	if fd.Enum() != nil {
		return string(fd.Enum().FullName())
	}
	return fd.Kind().String()
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("a string (%q)", x)
	case json.Number:
		return fmt.Sprintf("a number (%s)", x)
	case bool:
		return fmt.Sprintf("a boolean (%t)", x)
	}
	return jsonKind(v)
}

func (l *locator) scalar(v any, fd protoreflect.FieldDescriptor, path string) {
	if v == nil {
		if fd.Enum() != nil && fd.Enum().FullName() == "google.protobuf.NullValue" {
			return
		}
		return // null = unset
	}
	bad := func(want string) { l.errorf(path, "expected %s, got %s", want, describe(v)) }
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			bad("a boolean")
		}
	case protoreflect.StringKind:
		if _, ok := v.(string); !ok {
			bad("a string")
		}
	case protoreflect.BytesKind:
		s, ok := v.(string)
		if !ok {
			bad("a base64 string (bytes)")
			return
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			if _, err2 := base64.URLEncoding.DecodeString(s); err2 != nil {
				if _, err3 := base64.RawStdEncoding.DecodeString(s); err3 != nil {
					bad("a base64 string (bytes)")
				}
			}
		}
	case protoreflect.EnumKind:
		switch x := v.(type) {
		case string:
			if fd.Enum().Values().ByName(protoreflect.Name(x)) == nil {
				var names []string
				for i := 0; i < fd.Enum().Values().Len(); i++ {
					names = append(names, string(fd.Enum().Values().Get(i).Name()))
				}
				l.errorf(path, "unknown value %q of enum %s (values: %s)", x, fd.Enum().FullName(), strings.Join(names, ", "))
			}
		case json.Number:
			if _, err := x.Int64(); err != nil {
				bad("an enum name or number")
			}
		default:
			bad("an enum name (" + string(fd.Enum().FullName()) + ")")
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		l.integer(v, path, big.NewInt(math.MinInt32), big.NewInt(math.MaxInt32), fd.Kind().String())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		l.integer(v, path, big.NewInt(0), big.NewInt(math.MaxUint32), fd.Kind().String())
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		l.integer(v, path, big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64), fd.Kind().String())
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		l.integer(v, path, big.NewInt(0), new(big.Int).SetUint64(math.MaxUint64), fd.Kind().String())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		switch x := v.(type) {
		case json.Number:
		case string:
			if x != "NaN" && x != "Infinity" && x != "-Infinity" {
				if _, ok := new(big.Float).SetString(x); !ok {
					bad("a number")
				}
			}
		default:
			bad("a number")
		}
	}
}

func (l *locator) integer(v any, path string, min, max *big.Int, kind string) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = x
	default:
		l.errorf(path, "expected an integer (%s), got %s", kind, describe(v))
		return
	}
	f, ok := new(big.Float).SetString(s)
	if !ok {
		l.errorf(path, "expected an integer (%s), got %s", kind, describe(v))
		return
	}
	i, acc := f.Int(nil)
	if acc != big.Exact {
		l.errorf(path, "expected an integer (%s), got %s", kind, describe(v))
		return
	}
	if i.Cmp(min) < 0 || i.Cmp(max) > 0 {
		l.errorf(path, "%s out of range for %s [%s, %s]", s, kind, min, max)
	}
}
