// Command corefile-check validates Corefiles the way Clawker's CoreDNS loads them, without
// serving: CoreDNS's own parser (caddyfile, with the directive list of this build, so an unknown
// directive is an error), every directive's setup function (so bad plugin arguments are errors:
// a template regex that does not compile, a dnsbpf with the wrong arguments, ...), then the server
// assembly (plugin chains built, zones checked for duplicates). Startup callbacks do not run: no
// socket is opened and no BPF map is touched.
//
//	corefile-check [-directives] FILE...   ('-' reads standard input)
//
// Prints `FILE: ok (N server blocks, M zones)` or `FILE: error: MESSAGE` per file. Exit status: 0 if
// every file is valid, 1 if one is not, 2 on a usage error.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/coredns/coredns/core/dnsserver"

	_ "clawker.dev/coredns/clawkerdns"
)

func main() {
	// Its own flag set: CoreDNS packages register theirs (-conf, -plugins, ...) on the default one.
	flags := flag.NewFlagSet("corefile-check", flag.ExitOnError)
	directives := flags.Bool("directives", false, "print the plugin chain order of this build (one directive per line, with its index) and exit")
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "usage: corefile-check [-directives] FILE... ('-' for standard input)\n")
		flags.PrintDefaults()
	}
	_ = flags.Parse(os.Args[1:])
	if *directives {
		for i, d := range dnsserver.Directives {
			fmt.Printf("%d %s\n", i, d)
		}
		return
	}
	if flags.NArg() == 0 {
		flags.Usage()
		os.Exit(2)
	}
	failed := false
	for _, file := range flags.Args() {
		body, err := read(file)
		if err == nil {
			var summary Summary
			if summary, err = Check(file, body); err == nil {
				fmt.Printf("%s: ok (%d server blocks, %d zones)\n", file, summary.ServerBlocks, summary.Zones)
				continue
			}
		}
		failed = true
		fmt.Printf("%s: error: %v\n", file, err)
	}
	if failed {
		os.Exit(1)
	}
}

func read(file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(file)
}
