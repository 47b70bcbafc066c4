package dnsguard

import (
	"strconv"
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
)

func init() { plugin.Register(Name, setup) }

func setup(c *caddy.Controller) error {
	g, err := parse(c)
	if err != nil {
		return plugin.Error(Name, err)
	}
	g.Lines = sharedLineLimiter()
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		g.Next = next
		return g
	})
	return nil
}

// parse reads (once per server block) `dnsguard { types ...; max_label N; max_name N; rate QPS BURST }`.
func parse(c *caddy.Controller) (*Guard, error) {
	g := &Guard{}
	seen := false
	for c.Next() {
		if seen {
			return nil, c.Err("dnsguard appears more than once in this server block")
		}
		seen = true
		if args := c.RemainingArgs(); len(args) != 0 {
			return nil, c.Errf("dnsguard takes no arguments, only a block of options, got %q", args)
		}
		given := map[string]bool{}
		for c.NextBlock() {
			option := c.Val()
			if given[option] {
				return nil, c.Errf("dnsguard: `%s` is given twice", option)
			}
			given[option] = true
			args := c.RemainingArgs()
			switch option {
			case "types":
				if len(args) == 0 {
					return nil, c.Err("dnsguard: `types` needs at least one query type (e.g. A AAAA CNAME HTTPS)")
				}
				g.Types = map[uint16]bool{}
				for _, name := range args {
					t, ok := dns.StringToType[strings.ToUpper(name)]
					if !ok {
						return nil, c.Errf("dnsguard: `types`: '%s' is not a DNS query type", name)
					}
					g.Types[t] = true
				}
			case "max_label":
				n, err := intArg(c, option, args, 1, 63)
				if err != nil {
					return nil, err
				}
				g.MaxLabel = n
			case "max_name":
				n, err := intArg(c, option, args, 1, 253)
				if err != nil {
					return nil, err
				}
				g.MaxName = n
			case "rate":
				if len(args) != 2 {
					return nil, c.Errf("dnsguard: `rate` takes 2 arguments, queries a second and burst, got %d: %q", len(args), args)
				}
				rate, err := intArg(c, option, args[:1], 1, 1_000_000)
				if err != nil {
					return nil, err
				}
				burst, err := intArg(c, option, args[1:], 1, 1_000_000)
				if err != nil {
					return nil, err
				}
				g.Queries = sharedLimiter(float64(rate), float64(burst))
			default:
				return nil, c.Errf("dnsguard: unknown option '%s' (options: types, max_label, max_name, rate)", option)
			}
		}
		if len(given) == 0 {
			return nil, c.Err("dnsguard without options checks nothing; give types, max_label, max_name or rate, or leave it out")
		}
	}
	return g, nil
}

func intArg(c *caddy.Controller, option string, args []string, lo, hi int) (int, error) {
	if len(args) != 1 {
		return 0, c.Errf("dnsguard: `%s` takes one number, got %d arguments: %q", option, len(args), args)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < lo || n > hi {
		return 0, c.Errf("dnsguard: `%s %s`: want a whole number from %d to %d", option, args[0], lo, hi)
	}
	return n, nil
}
