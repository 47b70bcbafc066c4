/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* The datapath's ABI: the layout of every pinned map's keys and values, the event record, and
 * the constants user space needs. Shared with user space: the Go manager
 * (images/controlplane/bpfman/datapath/layout.go) mirrors these structs field by field and its
 * tests check the mirror against the BTF of the compiled object.
 *
 * Rules for changing this file: addresses and ports are network byte order (as the kernel hands
 * them to sock_addr programs), everything else host order; every struct is padded explicitly so
 * that C and Go agree without guessing; changing a key or value size makes `bpfman load` replace
 * the pinned map instead of reusing it (see "Stale dns_cache or route_map after upgrade"). */
#ifndef CLAWKER_DATAPATH_H
#define CLAWKER_DATAPATH_H

#include <linux/types.h>

/* ---- limits ---------------------------------------------------------------------------- */
#define CLAWKER_MAX_CONTAINERS   16384  /* container_map, bypass_map, ratelimit_* */
#define CLAWKER_MAX_ROUTES       65536  /* each route table (inner map of route_map) */
#define CLAWKER_MAX_DNS_CACHE    262144 /* dns_cache */
#define CLAWKER_EVENTS_RING_SIZE (256 * 1024)
/* How many cgroup levels above the caller's own cgroup are searched for an enrolled one, so a
 * process that moves itself into a child cgroup of its container stays managed. */
#define CLAWKER_MAX_CGROUP_DEPTH 16

/* ---- ports ----------------------------------------------------------------------------- */
#define CLAWKER_DNS_PORT            53
#define CLAWKER_ENVOY_FRONT_PORT    10000 /* catch-all: SNI / Host decides */
#define CLAWKER_ENVOY_PORT_FIRST    10000 /* agents may reach Envoy on [FIRST, LAST] only */
#define CLAWKER_ENVOY_PORT_LAST     19999
/* Docker's embedded resolver inside every container on a user-defined network. Its port 53 is
 * steered like any DNS; its other ports (the real listeners behind Docker's DNAT) are refused,
 * or it would forward queries from outside the container's cgroup. */
#define CLAWKER_DOCKER_DNS_IP4      0x7f00000bU /* 127.0.0.11, host order */

/* ---- container_map: cgroup id (u64) -> struct container_config -------------------------- */
/* Presence gates enforcement: a cgroup with no entry (and no enrolled ancestor) is unmanaged. */
enum container_flags {
	/* Refuse all egress except loopback (DNS included): for a container that must stay offline,
	 * e.g. while the firewall stack is being replaced. */
	CONTAINER_F_LOCKDOWN = 1 << 0,
	/* `firewall disable --agent`: egress unrestricted until `enable` (the spec's "removed from
	 * per-container routing"), kept as an entry rather than a deletion so that an enrolled parent
	 * (the agents' lockdown anchor) cannot take over, and every decision is still audited as
	 * bypassed. LOCKDOWN wins over DISABLED. */
	CONTAINER_F_DISABLED = 1 << 1,
};
#define CONTAINER_F_ALL (CONTAINER_F_LOCKDOWN | CONTAINER_F_DISABLED)

struct container_config {
	__be32 envoy_ip4;    /* Envoy (<network>.200) */
	__be32 coredns_ip4;  /* CoreDNS (<network>.201) */
	__be32 gateway_ip4;  /* the bridge gateway (the host): refused, but for the host proxy */
	__be32 net_addr4;    /* the firewall network, e.g. 172.20.0.0 ... */
	__be32 net_mask4;    /* ... with mask 255.255.0.0: other members are refused */
	__u32 flags;         /* enum container_flags */
	__u32 events_rate;   /* events per second this cgroup may emit (token bucket refill) */
	__u32 events_burst;  /* bucket size; 0 disables events for this cgroup */
	/* The host proxy: agents may connect (unchanged) to TCP host_proxy_ip4:host_proxy_port and to
	 * nothing else of it. host_proxy_ip4 is the engine's host-gateway (what host.docker.internal
	 * resolves to in the containers); port in host order. Either 0: no host proxy. The network's
	 * gateway stays refused on every port, UDP and a locked-down container too. */
	__u16 host_proxy_port;
	__u8 pad[2];         /* zero */
	__be32 host_proxy_ip4;
};

/* ---- route_map: ARRAY_OF_MAPS, one slot (key 0) holding the current route table -------------
 * The table is a HASH struct route_key -> struct route_value. User space replaces the whole table
 * by filling a fresh inner map and swapping it into slot 0 (one pointer exchange): a program sees
 * either the old table or the new one, never a partial one. */
enum l4_proto {
	L4_TCP = 6,  /* IPPROTO_TCP */
	L4_UDP = 17, /* IPPROTO_UDP */
};

struct route_key {
	__u64 domain_key; /* FNV-1a 64 of the rule destination (src/core/firewall/domainKey.ts) */
	__u16 port;       /* destination port, host order */
	__u8 l4;          /* enum l4_proto */
	__u8 pad[5];      /* zero */
};

struct route_value {
	__u16 listener_port; /* Envoy listener, host order */
};

/* ---- dns_cache: IPv4 address (__be32) -> struct dns_cache_value -------------------------- */
#define DNS_CACHE_PERMANENT 0xffffffffffffffffULL /* expires_at of static (IP-literal) entries */

struct dns_cache_value {
	__u64 domain_key;
	__u64 expires_at; /* CLOCK_BOOTTIME ns; the entry routes only while now < expires_at */
};

/* ---- bypass_map: cgroup id (u64) -> bypass-until (__u64, CLOCK_BOOTTIME ns) --------------- */

/* ---- metrics_map: PERCPU_ARRAY, index enum verdict -> __u64 decisions ---------------------- */
enum verdict {
	VERDICT_ALLOWED = 0,
	VERDICT_DENIED = 1,
	VERDICT_BYPASSED = 2,
	VERDICT_REDIRECTED = 3,
	VERDICT_MAX,
};

/* Why: carried by events so a denial explains itself. */
enum reason {
	REASON_NONE = 0,
	REASON_LOOPBACK = 1,        /* allowed: 127.0.0.0/8, ::1, unspecified (= local) */
	REASON_DNS = 2,             /* DNS (port 53) steered to CoreDNS */
	REASON_ROUTE = 3,           /* redirected to the route's listener */
	REASON_CATCH_ALL = 4,       /* TCP without a route: Envoy's front listener */
	REASON_INFRA = 5,           /* allowed: Envoy on a listener port */
	REASON_BYPASS = 6,          /* bypass window open */
	REASON_GATEWAY = 7,         /* denied: the network gateway (the host) */
	REASON_PEER = 8,            /* denied: another member of the network */
	REASON_INFRA_PORT = 9,      /* denied: Envoy/CoreDNS on a port agents do not need */
	REASON_UDP_NO_ROUTE = 10,   /* denied: UDP without a route */
	REASON_IPV6 = 11,           /* denied: native IPv6 */
	REASON_SOCKET_TYPE = 12,    /* denied: raw, ICMP or other non TCP/UDP socket */
	REASON_PROTOCOL = 13,       /* denied: connect/sendmsg on a socket that is not TCP/UDP */
	REASON_LOCKDOWN = 14,       /* denied: CONTAINER_F_LOCKDOWN */
	REASON_DOCKER_DNS = 15,     /* denied: Docker's embedded resolver on a port other than 53 */
	REASON_DISABLED = 16,       /* bypassed: CONTAINER_F_DISABLED (firewall disable) */
	REASON_HOST_PROXY = 17,     /* allowed: TCP to the host proxy (host_proxy_ip4:host_proxy_port) */
};

enum hook {
	HOOK_CONNECT4 = 1,
	HOOK_CONNECT6 = 2,
	HOOK_SENDMSG4 = 3,
	HOOK_SENDMSG6 = 4,
	HOOK_SOCK_CREATE = 5,
};

/* ---- events_ringbuf: one struct event per decision (rate limited per cgroup) --------------
 * Addresses are 16 bytes; IPv4 is written IPv4-mapped (::ffff:a.b.c.d). */
struct event {
	__u64 timestamp;   /* CLOCK_BOOTTIME ns */
	__u64 cgroup_id;   /* the enrolled cgroup the decision was taken for */
	__u64 domain_key;  /* 0 when unknown */
	__u32 pid;         /* thread group id of the caller */
	__u32 uid;
	__u8 verdict;      /* enum verdict */
	__u8 hook;         /* enum hook */
	__u8 reason;       /* enum reason */
	__u8 family;       /* socket family: AF_INET or AF_INET6 */
	__u8 l4;           /* IPPROTO_* of the socket */
	__u8 sock_type;    /* SOCK_* of the socket */
	__be16 src_port;   /* local port, 0 when not bound yet */
	__be16 dst_port;   /* destination the application asked */
	__be16 new_port;   /* destination after a redirect, else 0 */
	__be32 src_ip[4];
	__be32 dst_ip[4];
	__be32 new_ip[4];
	__u32 pad;         /* zero */
};

/* ---- events_drops: PERCPU_ARRAY[1] -> __u64 ringbuf reservations that failed (ring full) ----
 * ---- ratelimit_state: LRU_HASH cgroup id -> struct ratelimit_state -------------------------
 * ---- ratelimit_drops: LRU_HASH cgroup id -> __u64 events suppressed by the token bucket ---- */
struct ratelimit_state {
	__u64 last_refill; /* CLOCK_BOOTTIME ns */
	__u64 tokens;
};

/* ---- per-socket original destination (SK_STORAGE, not pinned) ----------------------------
 * Written when connect/sendmsg rewrites a UDP destination, read by recvmsg: a reply whose source
 * is `rewritten` gets `original` as its source, so resolvers accept CoreDNS's answers. */
struct sock_orig_dst {
	__be32 rewritten_ip[4]; /* IPv4-mapped for IPv4 */
	__be32 original_ip[4];
	__be16 rewritten_port;
	__be16 original_port;
	__u32 pad;
};

#ifdef __bpf__
_Static_assert(sizeof(struct container_config) == 40, "container_config layout");
_Static_assert(__builtin_offsetof(struct container_config, host_proxy_port) == 32, "container_config layout");
_Static_assert(__builtin_offsetof(struct container_config, host_proxy_ip4) == 36, "container_config layout");
_Static_assert(sizeof(struct route_key) == 16, "route_key layout");
_Static_assert(sizeof(struct route_value) == 2, "route_value layout");
_Static_assert(sizeof(struct dns_cache_value) == 16, "dns_cache_value layout");
_Static_assert(sizeof(struct event) == 96, "event layout");
_Static_assert(sizeof(struct ratelimit_state) == 16, "ratelimit_state layout");
_Static_assert(sizeof(struct sock_orig_dst) == 40, "sock_orig_dst layout");
#endif

#endif /* CLAWKER_DATAPATH_H */
