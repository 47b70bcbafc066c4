// Command bpfman manages Clawker's eBPF egress datapath (bpf/bpf_sock.c): load and pin it, attach
// it to container cgroups, enroll containers, replace the route table, and read what it decides.
// Every command takes --pin-dir (default /sys/fs/bpf/clawker) and prints one JSON document (events:
// one JSON object per line). Needs CAP_BPF + CAP_SYS_ADMIN (root on the test bed).
//
// Build: make -C bpf bpfman (compiles bpf/bpf_sock.c, embeds the object, writes bpf/build/bpfman).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"clawker.dev/controlplane/bpfman/apirelay"
	"clawker.dev/controlplane/bpfman/datapath"
)

const usage = `usage: bpfman COMMAND [flags]   (every command: --pin-dir DIR, default /sys/fs/bpf/clawker)

  load     [--object FILE]                  load the datapath, pin programs and maps (reuse matching
                                            pinned maps, replace stale ones, update attached links)
  attach   --cgroup DIR                     attach the programs to a cgroup v2 directory
  detach   --cgroup DIR | --cgroup-id N     remove the cgroup's links
  enroll   --cgroup DIR | --cgroup-id N --config JSON [--host-proxy-port P]
                                            manage the cgroup: {"envoy","coredns","gateway","network",
                                            "flags":["lockdown"],"eventsPerSecond","eventsBurst"};
                                            P: the one TCP port of the gateway it may reach (the
                                            host proxy; 0 or absent: none)
  unenroll --cgroup DIR | --cgroup-id N     stop managing the cgroup
  routes   --file entries.json              replace the whole route table atomically (bpf/entries.json)
  dns-set  --ip A --key 0x... (--ttl S | --permanent)
                                            write a dns_cache entry (what CoreDNS's dnsbpf does)
  dns-gc                                    delete expired dns_cache entries
  flush                                     forget routes, the whole dns_cache and every bypass
                                            window (enrolments and lockdowns stay)
  bypass   --cgroup DIR | --cgroup-id N --seconds S
                                            open unrestricted egress for S seconds (0: close now)
  events   [--follow]                       print events (JSON lines); without --follow, what is queued
  stats                                     decisions per verdict, event drops
  show                                      containers, bypass windows, routes, dns_cache
  relay    [--socket PATH]                  carry the control plane's API between stdin/stdout and
                                            its Unix socket (default /run/clawker/controlplane.sock):
                                            the host's way in, through docker exec; exit 3 when
                                            nothing listens
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd := os.Args[1]
	if cmd == "relay" {
		fs := flag.NewFlagSet(cmd, flag.ExitOnError)
		socket := fs.String("socket", "/run/clawker/controlplane.sock", "the control plane's API socket")
		fs.Parse(os.Args[2:])
		apirelay.Main(*socket)
	}
	if err := run(cmd, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "bpfman %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

type flags struct {
	*flag.FlagSet
	pinDir   *string
	cgroup   *string
	cgroupID *uint64
}

func newFlags(cmd string, withCgroup bool) *flags {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	f := &flags{FlagSet: fs, pinDir: fs.String("pin-dir", datapath.DefaultPinDir, "bpffs directory of the pinned programs and maps")}
	if withCgroup {
		f.cgroup = fs.String("cgroup", "", "cgroup v2 directory of the container")
		f.cgroupID = fs.Uint64("cgroup-id", 0, "cgroup id (inode number of the cgroup v2 directory)")
	}
	return f
}

func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", f.Arg(0))
	}
	return nil
}

func (f *flags) id() (uint64, error) {
	switch {
	case *f.cgroup != "" && *f.cgroupID != 0:
		return 0, errors.New("give --cgroup or --cgroup-id, not both")
	case *f.cgroup != "":
		return datapath.CgroupID(*f.cgroup)
	case *f.cgroupID != 0:
		return *f.cgroupID, nil
	}
	return 0, errors.New("--cgroup DIR or --cgroup-id N is required")
}

func print(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func run(cmd string, args []string) error {
	switch cmd {
	case "load":
		f := newFlags(cmd, false)
		object := f.String("object", "", "datapath object to load instead of the embedded one")
		if err := f.parse(args); err != nil {
			return err
		}
		r, err := datapath.Load(*f.pinDir, *object)
		if err != nil {
			return err
		}
		return print(r)

	case "attach":
		f := newFlags(cmd, true)
		if err := f.parse(args); err != nil {
			return err
		}
		if *f.cgroup == "" {
			return errors.New("--cgroup DIR is required (the cgroup v2 directory to attach to)")
		}
		r, err := datapath.Attach(*f.pinDir, *f.cgroup)
		if err != nil {
			return err
		}
		return print(r)

	case "detach":
		f := newFlags(cmd, true)
		if err := f.parse(args); err != nil {
			return err
		}
		id, err := f.id()
		if err != nil {
			return err
		}
		names, err := datapath.Detach(*f.pinDir, id)
		if err != nil {
			return err
		}
		return print(map[string]any{"cgroupId": id, "detached": names})

	case "enroll":
		f := newFlags(cmd, true)
		config := f.String("config", "", "container config, JSON")
		hostProxy := f.String("host-proxy", "", "ADDRESS:PORT: the host proxy (the engine's host-gateway IPv4 and its TCP port), the one destination on the host the container may reach")
		if err := f.parse(args); err != nil {
			return err
		}
		id, err := f.id()
		if err != nil {
			return err
		}
		if *config == "" {
			return errors.New(`--config JSON is required, e.g. {"envoy":"10.0.0.200","coredns":"10.0.0.201","gateway":"10.0.0.1","network":"10.0.0.0/24"}`)
		}
		var spec datapath.ContainerSpec
		dec := json.NewDecoder(strings.NewReader(*config))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		if *hostProxy != "" {
			ap, err := netip.ParseAddrPort(*hostProxy)
			if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
				return fmt.Errorf("--host-proxy: %q is not IPV4:PORT (port 1-65535)", *hostProxy)
			}
			if spec.HostProxyAddress != "" || spec.HostProxyPort != 0 {
				return errors.New("--host-proxy and --config's hostProxyAddress/hostProxyPort: give one")
			}
			spec.HostProxyAddress, spec.HostProxyPort = ap.Addr().String(), ap.Port()
		}
		c, err := spec.Config()
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		if err := datapath.Enroll(*f.pinDir, id, c); err != nil {
			return err
		}
		return print(map[string]any{"cgroupId": id, "enrolled": true})

	case "unenroll":
		f := newFlags(cmd, true)
		if err := f.parse(args); err != nil {
			return err
		}
		id, err := f.id()
		if err != nil {
			return err
		}
		if err := datapath.Unenroll(*f.pinDir, id); err != nil {
			return err
		}
		return print(map[string]any{"cgroupId": id, "enrolled": false})

	case "routes":
		f := newFlags(cmd, false)
		file := f.String("file", "", "entries.json as the renderer writes it")
		if err := f.parse(args); err != nil {
			return err
		}
		if *file == "" {
			return errors.New("--file entries.json is required")
		}
		data, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		t, err := datapath.ParseEntries(data)
		if err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		r, err := datapath.ReplaceRoutes(*f.pinDir, t)
		if err != nil {
			return err
		}
		return print(r)

	case "dns-set":
		f := newFlags(cmd, false)
		ip := f.String("ip", "", "IPv4 address")
		key := f.String("key", "", "domain key, 0x + hex")
		ttl := f.Float64("ttl", -1, "seconds the entry routes (0: already expired)")
		permanent := f.Bool("permanent", false, "never expires (static entry)")
		if err := f.parse(args); err != nil {
			return err
		}
		addr, err := netip.ParseAddr(*ip)
		if err != nil {
			return fmt.Errorf("--ip: %w", err)
		}
		k, err := datapath.ParseDomainKey(*key)
		if err != nil {
			return fmt.Errorf("--key: %w", err)
		}
		if (*ttl < 0) == !*permanent {
			return errors.New("give --ttl SECONDS or --permanent")
		}
		if err := datapath.SetDNS(*f.pinDir, addr, k, time.Duration(*ttl*float64(time.Second)), *permanent); err != nil {
			return err
		}
		return print(map[string]any{"address": addr.String(), "domainKey": datapath.FormatDomainKey(k), "ttl": *ttl, "permanent": *permanent})

	case "dns-gc":
		f := newFlags(cmd, false)
		if err := f.parse(args); err != nil {
			return err
		}
		n, err := datapath.GCDNS(*f.pinDir)
		if err != nil {
			return err
		}
		return print(map[string]any{"removed": n})

	case "flush":
		f := newFlags(cmd, false)
		if err := f.parse(args); err != nil {
			return err
		}
		r, err := datapath.Flush(*f.pinDir)
		if err != nil {
			return err
		}
		return print(r)

	case "bypass":
		f := newFlags(cmd, true)
		seconds := f.Float64("seconds", -1, "how long; 0 closes the window now")
		if err := f.parse(args); err != nil {
			return err
		}
		id, err := f.id()
		if err != nil {
			return err
		}
		if *seconds < 0 {
			return errors.New("--seconds S is required")
		}
		if err := datapath.Bypass(*f.pinDir, id, time.Duration(*seconds*float64(time.Second))); err != nil {
			return err
		}
		return print(map[string]any{"cgroupId": id, "seconds": *seconds})

	case "events":
		f := newFlags(cmd, false)
		follow := f.Bool("follow", false, "keep reading until interrupted")
		if err := f.parse(args); err != nil {
			return err
		}
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		enc := json.NewEncoder(os.Stdout)
		return datapath.ReadEvents(ctx, *f.pinDir, *follow, func(ev datapath.Event) error { return enc.Encode(ev.JSON()) })

	case "stats":
		f := newFlags(cmd, false)
		if err := f.parse(args); err != nil {
			return err
		}
		s, err := datapath.ReadStats(*f.pinDir)
		if err != nil {
			return err
		}
		return print(s)

	case "show":
		f := newFlags(cmd, false)
		if err := f.parse(args); err != nil {
			return err
		}
		s, err := datapath.ReadState(*f.pinDir)
		if err != nil {
			return err
		}
		sort.Slice(s.Routes, func(i, j int) bool {
			a, b := s.Routes[i], s.Routes[j]
			return a.DomainKey+a.L4+strconv.Itoa(int(a.Port)) < b.DomainKey+b.L4+strconv.Itoa(int(b.Port))
		})
		sort.Slice(s.DNSCache, func(i, j int) bool { return s.DNSCache[i].Address < s.DNSCache[j].Address })
		return print(s)
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
