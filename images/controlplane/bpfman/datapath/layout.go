// Package datapath manages Clawker's eBPF egress datapath (bpf/bpf_sock.c): it loads the object,
// pins its programs and maps, attaches the programs to container cgroups and reads and writes the
// maps. The Go types here mirror bpf/include/clawker_datapath.h field by field; layout_test.go
// holds them to the BTF of the compiled object.
package datapath

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Names of the pinned maps (files under the pin directory).
const (
	ContainerMap   = "container_map"
	RouteMap       = "route_map"
	DNSCache       = "dns_cache"
	BypassMap      = "bypass_map"
	MetricsMap     = "metrics_map"
	EventsRingbuf  = "events_ringbuf"
	EventsDrops    = "events_drops"
	RatelimitState = "ratelimit_state"
	RatelimitDrops = "ratelimit_drops"
	SockOrigDst    = "sock_orig_dst"
	// routeTableTemplate is declared in the object only for its BTF; it is never loaded or pinned.
	routeTableTemplate = "route_table"
)

// DefaultPinDir is where a real install pins everything.
const DefaultPinDir = "/sys/fs/bpf/clawker"

// Container flags (enum container_flags).
const (
	FlagLockdown uint32 = 1 << 0
	FlagDisabled uint32 = 1 << 1
	flagsAll            = FlagLockdown | FlagDisabled
)

// ContainerConfig is struct container_config: the value of container_map, keyed by cgroup id.
type ContainerConfig struct {
	EnvoyIP4    [4]byte // network order
	CoreDNSIP4  [4]byte
	GatewayIP4  [4]byte
	NetAddr4    [4]byte
	NetMask4    [4]byte
	Flags       uint32
	EventsRate  uint32 // events per second
	EventsBurst uint32 // token bucket size; 0 = no events
	// HostProxyPort and HostProxyIP4: the one TCP destination of the host agents may connect to
	// (the engine's host-gateway, where host.docker.internal points); port in host order, IP in
	// network order; either zero: none.
	HostProxyPort uint16
	Pad           [2]uint8
	HostProxyIP4  [4]byte
}

// ContainerConfigSize is sizeof(struct container_config) (a _Static_assert in
// clawker_datapath.h says the same).
const ContainerConfigSize = 40

// L4 protocols of route keys (IPPROTO_*).
const (
	L4TCP uint8 = 6
	L4UDP uint8 = 17
)

// RouteKey is struct route_key.
type RouteKey struct {
	DomainKey uint64
	Port      uint16 // host order
	L4        uint8
	Pad       [5]uint8
}

// RouteValue is struct route_value.
type RouteValue struct {
	ListenerPort uint16 // host order
}

// DNSPermanent is the expires_at of static (IP-literal) dns_cache entries.
const DNSPermanent = ^uint64(0)

// DNSCacheValue is struct dns_cache_value; dns_cache is keyed by the IPv4 address ([4]byte).
type DNSCacheValue struct {
	DomainKey uint64
	ExpiresAt uint64 // CLOCK_BOOTTIME ns
}

// RatelimitStateValue is struct ratelimit_state.
type RatelimitStateValue struct {
	LastRefill uint64
	Tokens     uint64
}

// SockOrigDstValue is struct sock_orig_dst (per-socket storage; user space never writes it).
type SockOrigDstValue struct {
	RewrittenIP   [16]byte
	OriginalIP    [16]byte
	RewrittenPort [2]byte
	OriginalPort  [2]byte
	Pad           uint32
}

// Verdicts (enum verdict), the index of metrics_map.
const (
	VerdictAllowed uint8 = iota
	VerdictDenied
	VerdictBypassed
	VerdictRedirected
	verdictMax
)

// VerdictNames are the verdicts as events and stats name them.
var VerdictNames = [...]string{"allowed", "denied", "bypassed", "redirected"}

// ReasonNames by enum reason.
var ReasonNames = [...]string{
	"", "loopback", "dns", "route", "catch-all", "infra", "bypass", "gateway", "peer", "infra-port",
	"udp-no-route", "ipv6", "socket-type", "protocol", "lockdown", "docker-dns", "disabled", "host-proxy",
}

// HookNames by enum hook.
var HookNames = [...]string{"", "connect4", "connect6", "sendmsg4", "sendmsg6", "sock_create"}

// Event is struct event, one record of events_ringbuf.
type Event struct {
	Timestamp uint64
	CgroupID  uint64
	DomainKey uint64
	PID       uint32
	UID       uint32
	Verdict   uint8
	Hook      uint8
	Reason    uint8
	Family    uint8
	L4        uint8
	SockType  uint8
	SrcPort   [2]byte
	DstPort   [2]byte
	NewPort   [2]byte
	SrcIP     [16]byte
	DstIP     [16]byte
	NewIP     [16]byte
	Pad       uint32
}

// EventSize is sizeof(struct event) (a _Static_assert in clawker_datapath.h says the same).
const EventSize = 96

const (
	afInet  = 2
	afInet6 = 10
)

// DecodeEvent decodes one ring buffer record.
func DecodeEvent(raw []byte) (Event, error) {
	var ev Event
	if len(raw) < EventSize {
		return ev, fmt.Errorf("event record of %d bytes, want %d: bpfman and the loaded object disagree on struct event (run bpfman load from the same build)", len(raw), EventSize)
	}
	_, err := binary.Decode(raw[:EventSize], binary.NativeEndian, &ev)
	return ev, err
}

func name(names []string, i uint8) string {
	if int(i) < len(names) && names[i] != "" {
		return names[i]
	}
	return fmt.Sprintf("%d", i)
}

func addrPort(ip [16]byte, port [2]byte, family uint8) string {
	a := netip.AddrFrom16(ip)
	if family == afInet {
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, binary.BigEndian.Uint16(port[:])).String()
}

// EventJSON is an event as `bpfman events` prints it (one JSON object per line).
type EventJSON struct {
	Time      uint64 `json:"time"` // CLOCK_BOOTTIME ns
	Hook      string `json:"hook"`
	Verdict   string `json:"verdict"`
	Reason    string `json:"reason"`
	CgroupID  uint64 `json:"cgroupId"`
	PID       uint32 `json:"pid"`
	UID       uint32 `json:"uid"`
	Family    string `json:"family"`
	L4        string `json:"l4"`
	SockType  string `json:"sockType"`
	Src       string `json:"src,omitempty"`
	Dst       string `json:"dst,omitempty"`
	Redirect  string `json:"redirect,omitempty"`
	DomainKey string `json:"domainKey,omitempty"`
}

// JSON renders the event for people and tests.
func (ev Event) JSON() EventJSON {
	out := EventJSON{
		Time: ev.Timestamp, Hook: name(HookNames[:], ev.Hook), Verdict: name(VerdictNames[:], ev.Verdict),
		Reason: name(ReasonNames[:], ev.Reason), CgroupID: ev.CgroupID, PID: ev.PID, UID: ev.UID,
	}
	switch ev.Family {
	case afInet:
		out.Family = "inet"
	case afInet6:
		out.Family = "inet6"
	default:
		out.Family = fmt.Sprintf("%d", ev.Family)
	}
	switch ev.L4 {
	case L4TCP:
		out.L4 = "tcp"
	case L4UDP:
		out.L4 = "udp"
	default:
		out.L4 = fmt.Sprintf("%d", ev.L4)
	}
	switch ev.SockType {
	case 1:
		out.SockType = "stream"
	case 2:
		out.SockType = "dgram"
	case 3:
		out.SockType = "raw"
	default:
		out.SockType = fmt.Sprintf("%d", ev.SockType)
	}
	if ev.Hook != 5 { // sock_create has no addresses
		out.Src = addrPort(ev.SrcIP, ev.SrcPort, ev.Family)
		out.Dst = addrPort(ev.DstIP, ev.DstPort, ev.Family)
		if ev.Verdict == VerdictRedirected {
			out.Redirect = addrPort(ev.NewIP, ev.NewPort, ev.Family)
		}
	}
	if ev.DomainKey != 0 {
		out.DomainKey = FormatDomainKey(ev.DomainKey)
	}
	return out
}

// FormatDomainKey writes a domain key as the TypeScript renderer does: 0x + 16 hex digits.
func FormatDomainKey(k uint64) string { return fmt.Sprintf("0x%016x", k) }
