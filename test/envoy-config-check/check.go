package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/envoyproxy/go-control-plane/envoy/annotations"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"
)

const (
	bootstrapName = "envoy.config.bootstrap.v3.Bootstrap"
	discoveryName = "envoy.service.discovery.v3.DiscoveryResponse"
	anyName       = "google.protobuf.Any"
)

// Options of one check.
type Options struct {
	// Type: "auto", "bootstrap", "xds" or a full message name.
	Type string
	// AllowDeprecated reports deprecated fields as warnings instead of errors.
	AllowDeprecated bool
}

// Result of checking one file.
type Result struct {
	Type      string // full name of the message the file was parsed as
	Resources int    // xDS resources in the file (static resources for a bootstrap)
	Errors    []string
	Warnings  []string
	Notes     []string // context for the errors (protojson's own message)
}

type checker struct {
	opt Options
	res *Result
}

func (c *checker) errorf(path, format string, args ...any) {
	c.res.Errors = append(c.res.Errors, withPath(path, fmt.Sprintf(format, args...)))
}

func (c *checker) warnf(path, format string, args ...any) {
	c.res.Warnings = append(c.res.Warnings, withPath(path, fmt.Sprintf(format, args...)))
}

func withPath(path, msg string) string {
	if path == "" {
		path = "(top level)"
	}
	return path + ": " + msg
}

func join(path string, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// CheckFile parses, validates and checks one file.
func CheckFile(file string, opt Options) Result {
	r := Result{}
	c := &checker{opt: opt, res: &r}
	data, err := os.ReadFile(file)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return r
	}
	jsonData := data
	if !strings.HasSuffix(strings.ToLower(file), ".json") {
		// Envoy reads .yaml/.yml (anything not .json/.pb/.pb_text) as YAML.
		jsonData, err = yaml.YAMLToJSONStrict(data)
		if err != nil {
			r.Errors = append(r.Errors, "YAML: "+err.Error())
			return r
		}
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(jsonData))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		r.Errors = append(r.Errors, "JSON: "+err.Error())
		return r
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		r.Errors = append(r.Errors, fmt.Sprintf("the document must be an object, got %s", jsonKind(doc)))
		return r
	}

	name, err := decideType(opt.Type, obj)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return r
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	if err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("-type: unknown message %q", name))
		return r
	}
	r.Type = name
	msg := mt.New().Interface()

	// Strict parse: DiscardUnknown false (the default) makes any unknown field an error, and
	// the resolver (the global registry, filled by imports_gen.go) makes an unknown "@type" one.
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false, Resolver: protoregistry.GlobalTypes}).Unmarshal(jsonData, msg); err != nil {
		// protojson's own message is authoritative, but its line:column refers to the JSON text
		// (for a YAML file, the YAML converted to JSON, all on one line): locate names the
		// fields. If locate finds nothing, protojson's message is the error.
		found := locate(doc, msg.ProtoReflect().Descriptor(), "")
		if len(found) == 0 {
			r.Errors = append(r.Errors, "parse: "+err.Error())
		} else {
			r.Errors = append(r.Errors, found...)
			r.Notes = append(r.Notes, "protojson: "+err.Error())
		}
		return r
	}

	switch m := msg.(type) {
	case *discoveryv3.DiscoveryResponse:
		r.Resources = len(m.GetResources())
		c.discoveryResponse(m)
	case *bootstrapv3.Bootstrap:
		sr := m.GetStaticResources()
		r.Resources = len(sr.GetListeners()) + len(sr.GetClusters()) + len(sr.GetSecrets())
	case *anypb.Any:
		r.Type = strings.TrimPrefix(m.GetTypeUrl(), "type.googleapis.com/")
		r.Resources = 1
	default:
		r.Resources = 1
	}
	c.checkRoot(msg, "")
	return r
}

// decideType picks the message a document is parsed as (see the package comment).
func decideType(t string, obj map[string]any) (string, error) {
	switch t {
	case "", "auto":
		if _, ok := obj["resources"]; ok {
			return discoveryName, nil
		}
		if _, ok := obj["@type"]; ok {
			return anyName, nil
		}
		return bootstrapName, nil
	case "bootstrap":
		return bootstrapName, nil
	case "xds", "resources", "discovery":
		return discoveryName, nil
	default:
		return t, nil
	}
}

// checkRoot validates a message that is not reached by any enclosing ValidateAll (the file's
// top-level message, or the contents of an Any), then walks it.
func (c *checker) checkRoot(msg proto.Message, path string) {
	if a, ok := msg.(*anypb.Any); ok {
		c.checkAny(a, path)
		return
	}
	c.validateAll(msg, path)
	c.walk(msg.ProtoReflect(), path)
}

// validateAll runs protoc-gen-validate's ValidateAll. It recurses into embedded messages,
// repeated and map values by itself, but not into google.protobuf.Any (anypb.Any has no
// ValidateAll method, so the generated code skips it): checkAny does that.
func (c *checker) validateAll(msg proto.Message, path string) {
	v, ok := msg.(interface{ ValidateAll() error })
	if !ok {
		return
	}
	if err := v.ValidateAll(); err != nil {
		c.flatten(err, msg.ProtoReflect().Descriptor(), path)
	}
}

type pgvError interface {
	Field() string
	Reason() string
	Cause() error
	Key() bool
}

// flatten turns a protoc-gen-validate error tree into one line per violation with the field
// path in proto field names (filter_chains[0].filters[1].name), not PGV's Go names.
func (c *checker) flatten(err error, md protoreflect.MessageDescriptor, path string) {
	if me, ok := err.(interface{ AllErrors() []error }); ok {
		for _, e := range me.AllErrors() {
			c.flatten(e, md, path)
		}
		return
	}
	ve, ok := err.(pgvError)
	if !ok {
		c.errorf(path, "%v", err)
		return
	}
	field := ve.Field()
	name, suffix := field, ""
	if i := strings.IndexByte(field, '['); i >= 0 {
		name, suffix = field[:i], field[i:]
	}
	fpath := join(path, field)
	var sub protoreflect.MessageDescriptor
	extra := ""
	if fd := findField(md, name); fd != nil {
		fpath = join(path, string(fd.Name())) + suffix
		if fd.IsMap() {
			sub = fd.MapValue().Message()
		} else {
			sub = fd.Message()
		}
	} else if od := findOneof(md, name); od != nil {
		fpath = join(path, string(od.Name()))
		var names []string
		for i := 0; i < od.Fields().Len(); i++ {
			names = append(names, string(od.Fields().Get(i).Name()))
		}
		extra = " (one of: " + strings.Join(names, ", ") + ")"
	}
	reason := ve.Reason()
	if ve.Key() {
		reason = "map key: " + reason
	}
	if ve.Cause() != nil && sub != nil && !ve.Key() {
		c.flatten(ve.Cause(), sub, fpath)
		return
	}
	if ve.Cause() != nil {
		reason += ": " + ve.Cause().Error()
	}
	c.errorf(fpath, "%s%s [%s]", reason, extra, md.FullName())
}

func squash(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "_", ""))
}

// findField maps PGV's Go field name (GoCamelCase of the proto name) back to the field.
func findField(md protoreflect.MessageDescriptor, goName string) protoreflect.FieldDescriptor {
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if squash(string(fields.Get(i).Name())) == squash(goName) {
			return fields.Get(i)
		}
	}
	return nil
}

func findOneof(md protoreflect.MessageDescriptor, goName string) protoreflect.OneofDescriptor {
	oneofs := md.Oneofs()
	for i := 0; i < oneofs.Len(); i++ {
		if squash(string(oneofs.Get(i).Name())) == squash(goName) {
			return oneofs.Get(i)
		}
	}
	return nil
}

// checkAny resolves an Any (already resolved once by the strict parse), then validates and
// walks its contents. A TypedStruct (xds.type.v3 / udpa.type.v1) is converted to the message
// its type_url names, strictly, as Envoy does.
func (c *checker) checkAny(a *anypb.Any, path string) {
	inner, err := a.UnmarshalNew()
	if err != nil {
		c.errorf(path, "cannot unpack %s: %v", a.GetTypeUrl(), err)
		return
	}
	switch ts := inner.(type) {
	case interface {
		GetTypeUrl() string
		GetValue() *structpb.Struct
	}:
		if n := inner.ProtoReflect().Descriptor().FullName(); n == "xds.type.v3.TypedStruct" || n == "udpa.type.v1.TypedStruct" {
			c.typedStruct(ts.GetTypeUrl(), ts.GetValue(), path)
			return
		}
	}
	c.checkRoot(inner, path)
}

func (c *checker) typedStruct(typeURL string, value *structpb.Struct, path string) {
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(typeURL)
	if err != nil {
		c.errorf(join(path, "type_url"), "unknown type %q", typeURL)
		return
	}
	j, err := protojson.Marshal(value)
	if err != nil {
		c.errorf(join(path, "value"), "%v", err)
		return
	}
	m := mt.New().Interface()
	if err := (protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(j, m); err != nil {
		var doc any
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.UseNumber()
		_ = dec.Decode(&doc)
		found := locate(doc, m.ProtoReflect().Descriptor(), join(path, "value"))
		c.res.Errors = append(c.res.Errors, found...)
		if len(found) == 0 {
			c.errorf(join(path, "value"), "as %s: %v", mt.Descriptor().FullName(), err)
		} else {
			c.res.Notes = append(c.res.Notes, withPath(join(path, "value"), "protojson: "+err.Error()))
		}
		return
	}
	c.checkRoot(m, join(path, "value"))
}

// walk visits every populated field: Anys are unpacked and checked, deprecated fields and
// enum values are reported, and the semantic checks of semantic.go run on each message.
func (c *checker) walk(m protoreflect.Message, path string) {
	c.semantic(m, path)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		fpath := join(path, string(fd.Name()))
		c.deprecatedField(fd, fpath)
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				c.value(fd, l.Get(i), fmt.Sprintf("%s[%d]", fpath, i))
			}
		case fd.IsMap():
			var keys []protoreflect.MapKey
			v.Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			for _, k := range keys {
				c.value(fd.MapValue(), v.Map().Get(k), fmt.Sprintf("%s[%q]", fpath, k.String()))
			}
		default:
			c.value(fd, v, fpath)
		}
		return true
	})
}

func (c *checker) value(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) {
	if fd.Kind() == protoreflect.EnumKind {
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			opts, _ := ev.Options().(*descriptorpb.EnumValueOptions)
			disallowed, _ := proto.GetExtension(opts, annotations.E_DisallowedByDefaultEnum).(bool)
			c.deprecated(opts.GetDeprecated(), disallowed, path, fmt.Sprintf("enum value %s of %s", ev.Name(), fd.Enum().FullName()))
		}
		return
	}
	if fd.Message() == nil {
		return
	}
	mm := v.Message()
	if a, ok := mm.Interface().(*anypb.Any); ok {
		c.checkAny(a, path)
		return
	}
	c.walk(mm, path)
}

func (c *checker) deprecatedField(fd protoreflect.FieldDescriptor, path string) {
	opts, _ := fd.Options().(*descriptorpb.FieldOptions)
	disallowed, _ := proto.GetExtension(opts, annotations.E_DisallowedByDefault).(bool)
	c.deprecated(opts.GetDeprecated(), disallowed, path, fmt.Sprintf("field %s", fd.FullName()))
}

func (c *checker) deprecated(deprecated, disallowed bool, path, what string) {
	switch {
	case disallowed:
		c.errorf(path, "%s is deprecated and disallowed by default (Envoy rejects it unless a runtime override allows it)", what)
	case deprecated && c.opt.AllowDeprecated:
		c.warnf(path, "%s is deprecated", what)
	case deprecated:
		c.errorf(path, "%s is deprecated (use -allow-deprecated to make this a warning)", what)
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
