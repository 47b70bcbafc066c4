package dnsbpf

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
)

func init() { plugin.Register(Name, setup) }

func setup(c *caddy.Controller) error {
	d, err := parse(c)
	if err != nil {
		return plugin.Error(Name, err)
	}
	// The writer is opened at startup, not here, so that validating a Corefile (which runs every
	// setup but no startup callback) needs no BPF map. A failure stops the server from starting
	// (or a reload from replacing the running configuration): fail closed.
	c.OnStartup(func() error {
		w, err := openWriter(d.MapPath)
		if err != nil {
			return plugin.Error(Name, fmt.Errorf("opening the dns_cache writer: %w", err))
		}
		d.Cache = w
		return nil
	})
	c.OnShutdown(func() error {
		if closer, ok := d.Cache.(io.Closer); ok {
			return closer.Close()
		}
		return nil
	})
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		d.Next = next
		return d
	})
	return nil
}

// announced holds the map paths already logged (each server block opens its own writer).
var announced sync.Map

func openWriter(path string) (CacheWriter, error) {
	if OpenCacheWriter != nil {
		return OpenCacheWriter()
	}
	w, err := OpenMapWriter(path)
	if err != nil {
		return nil, err
	}
	if _, seen := announced.LoadOrStore(path, true); !seen {
		log.Infof("recording resolved IPv4 addresses in the dns_cache map %s", path)
	}
	return w, nil
}

// parse reads (once per server block)
//
//	dnsbpf APEX SUB [{
//	    map PATH
//	}]
//
// and checks each destination against the block's zones: APEX must name the zone's apex (the zone
// itself, or a wildcard destination over it), SUB must be a wildcard destination covering the
// names below the zone. PATH is the pinned dns_cache map (absolute); without it the environment
// variable MapPathEnv, else DefaultMapPath. The path is only checked for form here.
func parse(c *caddy.Controller) (*DNSBPF, error) {
	d := &DNSBPF{Zones: plugin.OriginsFromArgsOrServerBlock(nil, c.ServerBlockKeys)}
	seen := false
	option := ""
	for c.Next() {
		if seen {
			return nil, c.Err("dnsbpf appears more than once in this server block; give it once, as `dnsbpf APEX SUB`")
		}
		seen = true
		args := c.RemainingArgs()
		if len(args) != 2 {
			return nil, c.Errf("dnsbpf takes exactly 2 arguments, APEX and SUB (each a rule destination or '-'), got %d: %q", len(args), args)
		}
		for c.NextBlock() {
			switch c.Val() {
			case "map":
				if option != "" {
					return nil, c.Err("dnsbpf: `map` is given twice")
				}
				paths := c.RemainingArgs()
				if len(paths) != 1 {
					return nil, c.Errf("dnsbpf: `map` takes one argument, the path of the pinned dns_cache map, got %d: %q", len(paths), paths)
				}
				if !filepath.IsAbs(paths[0]) {
					return nil, c.Errf("dnsbpf: `map %s`: the path of the pinned dns_cache map must be absolute (e.g. %s)", paths[0], DefaultMapPath)
				}
				option = filepath.Clean(paths[0])
			default:
				return nil, c.Errf("dnsbpf: unknown option '%s' (the only one is `map PATH`)", c.Val())
			}
		}
		var err error
		if d.Apex, err = parseDestination(args[0]); err != nil {
			return nil, c.Errf("dnsbpf APEX: %v", err)
		}
		if d.Sub, err = parseDestination(args[1]); err != nil {
			return nil, c.Errf("dnsbpf SUB: %v", err)
		}
		if d.Apex.None() && d.Sub.None() {
			return nil, c.Err("dnsbpf - -: nothing would be recorded; leave the directive out of this server block")
		}
		for _, zone := range d.Zones {
			name := strings.TrimSuffix(zone, ".")
			if name == "" {
				return nil, c.Err("dnsbpf cannot be used in the root zone '.': it records answers only for allowed zones")
			}
			if !d.Apex.None() && !coversApex(d.Apex.Name, name) {
				return nil, c.Errf("dnsbpf APEX '%s' does not cover the zone apex '%s': use '%s', a wildcard '.<parent>' over it, or '-'", d.Apex.Name, name, name)
			}
			if !d.Sub.None() && !coversBelow(d.Sub.Name, name) {
				if !strings.HasPrefix(d.Sub.Name, ".") {
					return nil, c.Errf("dnsbpf SUB '%s' is an exact destination; names below '%s' need a wildcard destination ('.%s' or a parent's) or '-'", d.Sub.Name, name, name)
				}
				return nil, c.Errf("dnsbpf SUB '%s' does not cover the names below '%s'", d.Sub.Name, name)
			}
		}
	}
	path, source := mapPath(option)
	if !filepath.IsAbs(path) {
		return nil, c.Errf("dnsbpf: the path of the pinned dns_cache map must be absolute; %s gives '%s'", source, path)
	}
	d.MapPath = filepath.Clean(path)
	return d, nil
}

// parseDestination checks that arg is '-' or a destination as rules write it after normalisation:
// lower-case ASCII labels of letters, digits, '-' and '_', joined by dots, optionally led by a dot
// (a wildcard), without a trailing dot.
func parseDestination(arg string) (Destination, error) {
	if arg == "-" {
		return Destination{}, nil
	}
	name := strings.TrimPrefix(arg, ".")
	switch {
	case name == "":
		return Destination{}, fmt.Errorf("'%s' is not a destination (want a domain such as api.example.org or .example.org, or '-')", arg)
	case strings.HasSuffix(name, "."):
		return Destination{}, fmt.Errorf("'%s' ends with a dot; destinations are written without the root dot", arg)
	case len(name) > 253:
		return Destination{}, fmt.Errorf("'%s' is longer than a domain name may be (253 characters)", arg)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return Destination{}, fmt.Errorf("'%s' has an empty label", arg)
		}
		if len(label) > 63 {
			return Destination{}, fmt.Errorf("'%s' has a label longer than 63 characters", arg)
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			switch {
			case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
			case ch >= 'A' && ch <= 'Z':
				return Destination{}, fmt.Errorf("'%s' is not lower case; destinations are keyed as rules normalise them (lower case)", arg)
			case ch >= 0x80:
				return Destination{}, fmt.Errorf("'%s' is not ASCII; write internationalised names in their xn-- form", arg)
			default:
				return Destination{}, fmt.Errorf("'%s' contains %q, which a domain name may not", arg, ch)
			}
		}
	}
	return NewDestination(arg), nil
}

// coversApex: an answer for the zone's apex name may carry dest's key.
func coversApex(dest, zone string) bool {
	if dest == zone {
		return true
	}
	return strings.HasPrefix(dest, ".") && (zone == dest[1:] || strings.HasSuffix(zone, dest))
}

// coversBelow: answers for the names strictly below the zone may carry dest's key.
func coversBelow(dest, zone string) bool {
	return strings.HasPrefix(dest, ".") && (zone == dest[1:] || strings.HasSuffix(zone, dest))
}
