// Command envoy-config-check checks Envoy configuration files without running Envoy.
//
// Every file is parsed strictly into Envoy's own v3 API types (go-control-plane; an unknown
// field, a wrong JSON type or an unknown "@type" is an error), then passed through the
// generated protoc-gen-validate rules (ValidateAll), including the contents of every
// google.protobuf.Any (typed_config, DiscoveryResponse.resources), which ValidateAll itself does
// not look into. A few load-time rules of Envoy that are not expressed as validation rules are
// approximated as well (see semantic.go). None of this proves Envoy accepts the file: only
// running Envoy does.
//
// Usage:
//
//	envoy-config-check [-type auto|bootstrap|xds|MESSAGE] [-allow-deprecated] [--] FILE...
//
// What a file is (-type auto, the default), from the top-level keys of the document:
//   - it has "resources": a filesystem xDS file, as Envoy's path_config_source reads it, parsed as
//     envoy.service.discovery.v3.DiscoveryResponse; every resource carries its "@type"
//     (Listener, Cluster, RouteConfiguration, Secret, ...), all resources of one file must have
//     the same type, and resource names must be unique in the file;
//   - it has "@type": a single resource of that type (as an Any);
//   - otherwise: a bootstrap, envoy.config.bootstrap.v3.Bootstrap.
//
// -type bootstrap / -type xds force one of the first two readings; -type with a full message
// name (e.g. envoy.config.listener.v3.Listener) parses the file as that message.
//
// Files ending in .json are read as JSON; everything else as YAML (converted to JSON, duplicate
// keys rejected), as Envoy does with its own YAML loader.
//
// Output: one line "FILE: ok (N resources, TYPE)" per good file, or "FILE: error: PATH: MESSAGE"
// per problem then "FILE: N errors". Exit status 0 if every file is ok, 1 if any is not, 2 on
// a usage error.
package main

//go:generate sh gen-imports.sh

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	typ := flag.String("type", "auto", "auto | bootstrap | xds | a full proto message name")
	allowDeprecated := flag.Bool("allow-deprecated", false, "report deprecated fields and enum values as warnings instead of errors")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: envoy-config-check [-type auto|bootstrap|xds|MESSAGE] [-allow-deprecated] [--] FILE...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	files := flag.Args()
	if len(files) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	failed := false
	for _, f := range files {
		r := CheckFile(f, Options{Type: *typ, AllowDeprecated: *allowDeprecated})
		for _, w := range r.Warnings {
			fmt.Printf("%s: warning: %s\n", f, w)
		}
		if len(r.Errors) == 0 {
			fmt.Printf("%s: ok (%d resources, %s)\n", f, r.Resources, r.Type)
			continue
		}
		failed = true
		for _, e := range r.Errors {
			fmt.Printf("%s: error: %s\n", f, e)
		}
		for _, n := range r.Notes {
			fmt.Printf("%s: note: %s\n", f, n)
		}
		fmt.Printf("%s: %d errors\n", f, len(r.Errors))
	}
	if failed {
		os.Exit(1)
	}
}
