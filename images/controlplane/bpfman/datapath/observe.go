package datapath

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// Stats are the datapath's counters.
type Stats struct {
	// Decisions per verdict, summed over CPUs (metrics_map).
	Verdicts map[string]uint64 `json:"verdicts"`
	// Events lost because events_ringbuf was full (events_drops).
	EventsDrops uint64 `json:"eventsDrops"`
	// Events suppressed by each cgroup's token bucket (ratelimit_drops), by cgroup id.
	RatelimitDrops map[string]uint64 `json:"ratelimitDrops"`
}

func sumPerCPU(m *ebpf.Map, index uint32) (uint64, error) {
	var values []uint64
	if err := m.Lookup(index, &values); err != nil {
		return 0, err
	}
	var sum uint64
	for _, v := range values {
		sum += v
	}
	return sum, nil
}

// ReadStats reads metrics_map, events_drops and ratelimit_drops.
func ReadStats(pinDir string) (*Stats, error) {
	s := &Stats{Verdicts: map[string]uint64{}, RatelimitDrops: map[string]uint64{}}
	err := withMap(pinDir, MetricsMap, func(m *ebpf.Map) error {
		for v := uint8(0); v < verdictMax; v++ {
			n, err := sumPerCPU(m, uint32(v))
			if err != nil {
				return fmt.Errorf("reading metrics_map[%s]: %w", VerdictNames[v], err)
			}
			s.Verdicts[VerdictNames[v]] = n
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = withMap(pinDir, EventsDrops, func(m *ebpf.Map) error {
		n, err := sumPerCPU(m, 0)
		s.EventsDrops = n
		return err
	})
	if err != nil {
		return nil, err
	}
	err = withMap(pinDir, RatelimitDrops, func(m *ebpf.Map) error {
		var (
			k, v uint64
		)
		it := m.Iterate()
		for it.Next(&k, &v) {
			s.RatelimitDrops[strconv.FormatUint(k, 10)] = v
		}
		return it.Err()
	})
	return s, err
}

// State is everything the maps say, for `bpfman show`.
type State struct {
	Containers map[string]ContainerSpec `json:"containers"` // by cgroup id
	// Bypass: seconds left, by cgroup id (expired windows are shown as 0 until overwritten).
	Bypass   map[string]float64 `json:"bypass"`
	Routes   []RouteJSON        `json:"routes"`
	DNSCache []DNSJSON          `json:"dnsCache"`
}

// RouteJSON is a route as bpf/entries.json writes it.
type RouteJSON struct {
	DomainKey    string `json:"domainKey"`
	L4           string `json:"l4"`
	Port         uint16 `json:"port"`
	ListenerPort uint16 `json:"listenerPort"`
}

// DNSJSON is a dns_cache entry; TTL is the seconds left (-1: permanent, 0: expired).
type DNSJSON struct {
	Address   string  `json:"address"`
	DomainKey string  `json:"domainKey"`
	TTL       float64 `json:"ttl"`
}

// ReadState reads container_map, bypass_map, the current route table and dns_cache.
func ReadState(pinDir string) (*State, error) {
	now := Now()
	st := &State{Containers: map[string]ContainerSpec{}, Bypass: map[string]float64{}, Routes: []RouteJSON{}, DNSCache: []DNSJSON{}}
	err := withMap(pinDir, ContainerMap, func(m *ebpf.Map) error {
		var (
			id uint64
			c  ContainerConfig
		)
		it := m.Iterate()
		for it.Next(&id, &c) {
			spec := ContainerSpec{
				Envoy: netip.AddrFrom4(c.EnvoyIP4).String(), CoreDNS: netip.AddrFrom4(c.CoreDNSIP4).String(),
				Gateway: netip.AddrFrom4(c.GatewayIP4).String(), Flags: []string{},
			}
			bits := 0
			for _, b := range c.NetMask4 {
				for ; b != 0; b <<= 1 {
					bits++
				}
			}
			spec.Network = netip.PrefixFrom(netip.AddrFrom4(c.NetAddr4), bits).String()
			if c.Flags&FlagLockdown != 0 {
				spec.Flags = append(spec.Flags, "lockdown")
			}
			if c.Flags&FlagDisabled != 0 {
				spec.Flags = append(spec.Flags, "disabled")
			}
			rate, burst := c.EventsRate, c.EventsBurst
			spec.EventsPerSecond, spec.EventsBurst = &rate, &burst
			spec.HostProxyPort = c.HostProxyPort
			if c.HostProxyIP4 != [4]byte{} {
				spec.HostProxyAddress = netip.AddrFrom4(c.HostProxyIP4).String()
			}
			st.Containers[strconv.FormatUint(id, 10)] = spec
		}
		return it.Err()
	})
	if err != nil {
		return nil, err
	}
	err = withMap(pinDir, BypassMap, func(m *ebpf.Map) error {
		var id, until uint64
		it := m.Iterate()
		for it.Next(&id, &until) {
			left := 0.0
			if until > now {
				left = float64(until-now) / 1e9
			}
			st.Bypass[strconv.FormatUint(id, 10)] = left
		}
		return it.Err()
	})
	if err != nil {
		return nil, err
	}
	err = withMap(pinDir, RouteMap, func(outer *ebpf.Map) error {
		var table *ebpf.Map
		if err := outer.Lookup(uint32(0), &table); err != nil {
			return nil // no table: no routes
		}
		defer table.Close()
		var (
			k RouteKey
			v RouteValue
		)
		it := table.Iterate()
		for it.Next(&k, &v) {
			l4 := "tcp"
			if k.L4 == L4UDP {
				l4 = "udp"
			}
			st.Routes = append(st.Routes, RouteJSON{DomainKey: FormatDomainKey(k.DomainKey), L4: l4, Port: k.Port, ListenerPort: v.ListenerPort})
		}
		return it.Err()
	})
	if err != nil {
		return nil, err
	}
	err = withMap(pinDir, DNSCache, func(m *ebpf.Map) error {
		var (
			k [4]byte
			v DNSCacheValue
		)
		it := m.Iterate()
		for it.Next(&k, &v) {
			ttl := -1.0
			if v.ExpiresAt != DNSPermanent {
				ttl = 0
				if v.ExpiresAt > now {
					ttl = float64(v.ExpiresAt-now) / 1e9
				}
			}
			st.DNSCache = append(st.DNSCache, DNSJSON{Address: netip.AddrFrom4(k).String(), DomainKey: FormatDomainKey(v.DomainKey), TTL: ttl})
		}
		return it.Err()
	})
	return st, err
}

// ReadEvents reads events_ringbuf and calls emit for each event. With follow it waits for new
// events until ctx is done; otherwise it returns once the ring is empty. The ring has a single
// consumer position: run one reader at a time (the control plane's netlogger, or this command).
func ReadEvents(ctx context.Context, pinDir string, follow bool, emit func(Event) error) error {
	m, err := OpenMap(pinDir, EventsRingbuf)
	if err != nil {
		return err
	}
	defer m.Close()
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		return fmt.Errorf("reading events_ringbuf: %w", err)
	}
	defer rd.Close()
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	if !follow {
		rd.SetDeadline(time.Now())
	}
	var rec ringbuf.Record
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ringbuf.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading events_ringbuf: %w", err)
		}
		ev, err := DecodeEvent(rec.RawSample)
		if err != nil {
			return err
		}
		if err := emit(ev); err != nil {
			return err
		}
	}
}
