// Package clawkerdns is Clawker's CoreDNS: every standard CoreDNS plugin plus dnsbpf, with dnsbpf
// placed in the plugin chain right before `forward`, and dnsguard right after `log`. Importing it (for its side effects, as both
// cmd/coredns-clawker and cmd/corefile-check do) is what makes a binary Clawker's CoreDNS, so the
// checker validates Corefiles against exactly the plugin set and order the server runs.
package clawkerdns

import (
	"fmt"
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/core/plugin" // all standard plugins

	"clawker.dev/coredns/plugin/dnsbpf"
	"clawker.dev/coredns/plugin/dnsguard"
)

// dnsbpf must see the answers `forward` writes, so it sits before `forward` in the chain (a plugin
// wraps everything after it); it must not see what `template` answers (NXDOMAIN for refused names,
// empty AAAA), so it sits after `template`. Right before `forward` also keeps every other
// answer-producing plugin (hosts, file, ...) out of its view, should one ever be configured.
const (
	insertBefore = "forward"
	mustFollow   = "template"
)

// dnsguard refuses queries before anything answers or forwards them, so it sits ahead of every
// answering plugin (template, forward, ...): right after `log` (and `errors`), which keeps it after
// the server's housekeeping plugins (health, ready, prometheus) and ahead of the rest.
const guardAfter = "log"

func init() {
	dnsserver.Directives = withDnsguard(withDnsbpf(dnsserver.Directives))
}

// withDnsguard returns directives with dnsguard inserted right after `log`; it panics if `log` is
// missing or dnsguard is already there, or if `log` comes after `template` (the first answering
// plugin the Corefile uses).
func withDnsguard(directives []string) []string {
	if slices.Contains(directives, dnsguard.Name) {
		panic(fmt.Sprintf("clawkerdns: directive %q is already registered", dnsguard.Name))
	}
	at := slices.Index(directives, guardAfter)
	template := slices.Index(directives, mustFollow)
	if at < 0 || template < 0 || at > template {
		panic(fmt.Sprintf("clawkerdns: cannot place %s after %q (index %d) and before %q (index %d) in this CoreDNS's directives", dnsguard.Name, guardAfter, at, mustFollow, template))
	}
	return slices.Insert(slices.Clone(directives), at+1, dnsguard.Name)
}

// withDnsbpf returns directives with dnsbpf inserted right before `forward`. It panics if the
// CoreDNS version at hand lacks `forward` or `template`, or orders them the other way: the build
// would not be Clawker's CoreDNS.
func withDnsbpf(directives []string) []string {
	if slices.Contains(directives, dnsbpf.Name) {
		panic(fmt.Sprintf("clawkerdns: directive %q is already registered", dnsbpf.Name))
	}
	at := slices.Index(directives, insertBefore)
	template := slices.Index(directives, mustFollow)
	if at < 0 || template < 0 || template > at {
		panic(fmt.Sprintf("clawkerdns: cannot place %s after %q (index %d) and before %q (index %d) in this CoreDNS's directives", dnsbpf.Name, mustFollow, template, insertBefore, at))
	}
	return slices.Insert(slices.Clone(directives), at, dnsbpf.Name)
}
