// Command coredns-clawker is the CoreDNS server of Clawker's firewall: standard CoreDNS with the
// dnsbpf plugin (see package clawkerdns). Flags are CoreDNS's own (-conf, -plugins, -version, ...).
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "clawker.dev/coredns/clawkerdns"
)

func main() { coremain.Run() }
