/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* Clawker's egress datapath: cgroup socket hooks attached (by bpfman attach) to every agent
 * container's cgroup v2 directory.
 *
 *   connect4 / connect6   TCP connect() and UDP connect()
 *   sendmsg4 / sendmsg6   unconnected UDP sendto()/sendmsg()
 *   recvmsg4 / recvmsg6   UDP replies: restore the source the application asked for
 *   sock_create           refuse raw, ICMP and every other non TCP/UDP inet socket
 *
 * A cgroup is managed when it, or one of its ancestors, has an entry in container_map; nothing
 * about the calling process (uid 0, capabilities) exempts it. For a managed cgroup, in this order:
 *
 *   CONTAINER_F_DISABLED, not locked down    allow                          bypassed
 *   bypass window open, not locked down      allow                          bypassed
 *   socket is not TCP or UDP                 deny                           denied
 *   CONTAINER_F_LOCKDOWN                     loopback (not port 53) only    allowed / denied
 *   port 53, TCP or UDP, any address         -> CoreDNS:53                  redirected
 *   127.0.0.11 (Docker's resolver), not 53   deny                           denied
 *   loopback 127/8, 0.0.0.0                  allow                          allowed
 *   TCP to host_proxy_ip4:host_proxy_port    allow (the host proxy; not 0)  allowed
 *   the gateway, any port                    deny (before any subnet rule)  denied
 *   Envoy on 10000-19999                     allow                          allowed
 *   Envoy or CoreDNS on any other port       deny (admin, health)           denied
 *   another member of the network            deny                           denied
 *   TCP, dns_cache hit (unexpired) + route   -> Envoy:route listener        redirected
 *   TCP otherwise                            -> Envoy:10000 (SNI/Host)      redirected
 *   UDP, dns_cache hit (unexpired) + route   -> Envoy:route listener        redirected
 *   UDP otherwise                            deny (EPERM)                   denied
 *
 * IPv6: IPv4-mapped addresses (::ffff:a.b.c.d) take exactly the IPv4 path (the rewrite keeps the
 * mapped form); ::1 and :: are loopback; every other IPv6 destination is denied.
 *
 * Every decision except loopback emits one struct event on events_ringbuf, subject to a per-cgroup
 * token bucket (ratelimit_state; suppressed events are counted in ratelimit_drops, events lost to
 * a full ring in events_drops); metrics_map counts every decision per verdict. */
#include <linux/in.h>
#include "clawker_common.h"
#include "clawker_datapath.h"
#include "clawker_maps.h"

#define AF_INET  2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM  2

#define NSEC_PER_SEC 1000000000ULL

struct decision {
	__u64 domain_key;
	__be32 new_ip4;  /* redirect target (IPv4, also for mapped IPv6) */
	__u16 new_port;  /* redirect target port, host order */
	__u8 verdict;
	__u8 reason;
};

/* ---- enrolment -------------------------------------------------------------------------- */

/* The config of the enrolled cgroup the caller belongs to: its own, else its outermost enrolled
 * ancestor (a process that creates and enters a child cgroup stays managed). NULL: unmanaged. */
static __always_inline const struct container_config *managed_config(__u64 *cgroup_id)
{
	__u64 id = bpf_get_current_cgroup_id();
	const struct container_config *cfg = bpf_map_lookup_elem(&container_map, &id);

	if (cfg) {
		*cgroup_id = id;
		return cfg;
	}
	for (int level = 1; level <= CLAWKER_MAX_CGROUP_DEPTH; level++) {
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			break; /* deeper than the caller's own cgroup */
		cfg = bpf_map_lookup_elem(&container_map, &id);
		if (cfg) {
			*cgroup_id = id;
			return cfg;
		}
	}
	return NULL;
}

static __always_inline int bypass_open(__u64 cgroup_id, __u64 now)
{
	__u64 *until = bpf_map_lookup_elem(&bypass_map, &cgroup_id);

	return until && now < *until;
}

/* Unrestricted egress for this decision: a disabled container (not locked down) or an open bypass
 * window. Sets the audited verdict (bypassed, with the reason) and returns 1. */
static __always_inline int unrestricted(const struct container_config *cfg, __u64 cgroup_id, __u64 now, struct decision *d)
{
	if (cfg->flags & CONTAINER_F_LOCKDOWN)
		return 0;
	if (cfg->flags & CONTAINER_F_DISABLED) {
		d->verdict = VERDICT_BYPASSED;
		d->reason = REASON_DISABLED;
		return 1;
	}
	if (bypass_open(cgroup_id, now)) {
		d->verdict = VERDICT_BYPASSED;
		d->reason = REASON_BYPASS;
		return 1;
	}
	return 0;
}

static __always_inline __u8 l4_of(__u32 type, __u32 protocol)
{
	if (type == SOCK_STREAM && protocol == IPPROTO_TCP)
		return L4_TCP;
	if (type == SOCK_DGRAM && protocol == IPPROTO_UDP)
		return L4_UDP;
	return 0;
}

/* ---- the IPv4 decision (IPv4 and IPv4-mapped IPv6) ------------------------------------------ */

static __always_inline void set(struct decision *d, __u8 verdict, __u8 reason)
{
	d->verdict = verdict;
	d->reason = reason;
}

static __always_inline void redirect(struct decision *d, __be32 ip, __u16 port, __u8 reason)
{
	d->verdict = VERDICT_REDIRECTED;
	d->reason = reason;
	d->new_ip4 = ip;
	d->new_port = port;
}

static __always_inline int is_loopback4(__u32 host_ip)
{
	return (host_ip >> 24) == 127 || host_ip == 0; /* connecting to 0.0.0.0 reaches this host */
}

/* The route for (dst, port, l4) from dns_cache and the current route table: its listener port, or
 * 0. Sets d->domain_key when the address has an unexpired dns_cache entry. */
static __always_inline __u16 route_lookup(__be32 dst, __u16 port, __u8 l4, __u64 now, struct decision *d)
{
	struct dns_cache_value *dns = bpf_map_lookup_elem(&dns_cache, &dst);
	if (!dns || now >= dns->expires_at)
		return 0; /* unknown address, or expired: never routes */
	d->domain_key = dns->domain_key;

	__u32 slot = 0;
	void *table = bpf_map_lookup_elem(&route_map, &slot);
	if (!table)
		return 0;
	struct route_key key = { .domain_key = dns->domain_key, .port = port, .l4 = l4 };
	struct route_value *route = bpf_map_lookup_elem(table, &key);
	return route ? route->listener_port : 0;
}

static __always_inline void decide4(const struct container_config *cfg, __be32 dst, __u16 port, __u8 l4,
				    __u64 now, struct decision *d)
{
	__u32 host_ip = bpf_ntohl(dst);

	if (cfg->flags & CONTAINER_F_LOCKDOWN) {
		if (is_loopback4(host_ip) && port != CLAWKER_DNS_PORT && host_ip != CLAWKER_DOCKER_DNS_IP4)
			set(d, VERDICT_ALLOWED, REASON_LOOPBACK);
		else
			set(d, VERDICT_DENIED, REASON_LOCKDOWN);
		return;
	}
	if (port == CLAWKER_DNS_PORT) {
		if (dst == cfg->coredns_ip4)
			set(d, VERDICT_ALLOWED, REASON_DNS);
		else
			redirect(d, cfg->coredns_ip4, CLAWKER_DNS_PORT, REASON_DNS);
		return;
	}
	if (host_ip == CLAWKER_DOCKER_DNS_IP4) {
		set(d, VERDICT_DENIED, REASON_DOCKER_DNS);
		return;
	}
	if (is_loopback4(host_ip)) {
		set(d, VERDICT_ALLOWED, REASON_LOOPBACK);
		return;
	}
	/* The host proxy: exactly one TCP address and port (lockdown, bypass and DNS were decided
	 * above); any other port of that address goes on like any destination outside the network. */
	if (l4 == L4_TCP && cfg->host_proxy_port && cfg->host_proxy_ip4 && dst == cfg->host_proxy_ip4 &&
	    port == cfg->host_proxy_port) {
		set(d, VERDICT_ALLOWED, REASON_HOST_PROXY);
		return;
	}
	/* Gateway lockdown comes before every subnet rule: the gateway is inside the subnet. */
	if (dst == cfg->gateway_ip4) {
		set(d, VERDICT_DENIED, REASON_GATEWAY);
		return;
	}
	if (dst == cfg->envoy_ip4) {
		if (port >= CLAWKER_ENVOY_PORT_FIRST && port <= CLAWKER_ENVOY_PORT_LAST)
			set(d, VERDICT_ALLOWED, REASON_INFRA);
		else
			set(d, VERDICT_DENIED, REASON_INFRA_PORT);
		return;
	}
	if (dst == cfg->coredns_ip4) {
		set(d, VERDICT_DENIED, REASON_INFRA_PORT);
		return;
	}
	if ((dst & cfg->net_mask4) == cfg->net_addr4) {
		set(d, VERDICT_DENIED, REASON_PEER);
		return;
	}

	__u16 listener = route_lookup(dst, port, l4, now, d);
	if (listener)
		redirect(d, cfg->envoy_ip4, listener, REASON_ROUTE);
	else if (l4 == L4_TCP)
		redirect(d, cfg->envoy_ip4, CLAWKER_ENVOY_FRONT_PORT, REASON_CATCH_ALL);
	else
		set(d, VERDICT_DENIED, REASON_UDP_NO_ROUTE);
}

/* ---- accounting: metrics, rate-limited events ---------------------------------------------- */

static __always_inline void count_verdict(__u8 verdict)
{
	__u32 index = verdict;
	__u64 *n = bpf_map_lookup_elem(&metrics_map, &index);

	if (n)
		*n += 1; /* per-CPU slot: no atomics needed */
}

static __always_inline void count_per_cgroup(void *map, __u64 cgroup_id)
{
	__u64 *n = bpf_map_lookup_elem(map, &cgroup_id);

	if (n) {
		__sync_fetch_and_add(n, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(map, &cgroup_id, &one, BPF_NOEXIST);
	}
}

/* Token bucket per cgroup: events_burst tokens, refilled at events_rate per second. Concurrent
 * callers on several CPUs may race on the state; the bucket is then approximate, never unsafe. */
static __always_inline int take_event_token(const struct container_config *cfg, __u64 cgroup_id, __u64 now)
{
	__u64 burst = cfg->events_burst;
	__u64 rate = cfg->events_rate;

	if (!burst)
		return 0; /* events off for this cgroup */

	struct ratelimit_state *st = bpf_map_lookup_elem(&ratelimit_state, &cgroup_id);
	if (!st) {
		struct ratelimit_state fresh = { .last_refill = now, .tokens = burst };
		bpf_map_update_elem(&ratelimit_state, &cgroup_id, &fresh, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&ratelimit_state, &cgroup_id);
		if (!st)
			return 0;
	}

	__u64 tokens = st->tokens;
	if (rate && now > st->last_refill) {
		__u64 elapsed = now - st->last_refill;
		if (elapsed >= burst * NSEC_PER_SEC / rate) {
			tokens = burst;
			st->last_refill = now;
		} else {
			/* elapsed < burst/rate s, so elapsed * rate < burst * 1e9 < 2^63: no overflow */
			__u64 add = elapsed * rate / NSEC_PER_SEC;
			if (add) {
				tokens += add;
				st->last_refill += add * NSEC_PER_SEC / rate; /* keep the fraction */
			}
		}
	}
	if (tokens > burst)
		tokens = burst;
	if (!tokens) {
		st->tokens = 0;
		count_per_cgroup(&ratelimit_drops, cgroup_id);
		return 0;
	}
	st->tokens = tokens - 1;
	return 1;
}

static __always_inline void ip4_mapped(__be32 out[4], __be32 ip4)
{
	out[0] = 0;
	out[1] = 0;
	out[2] = bpf_htonl(0xffff);
	out[3] = ip4;
}

static __always_inline void fill_event_common(struct event *ev, __u64 cgroup_id, __u64 now, const struct decision *d, __u8 hook)
{
	ev->timestamp = now;
	ev->cgroup_id = cgroup_id;
	ev->domain_key = d->domain_key;
	ev->pid = bpf_get_current_pid_tgid() >> 32;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	ev->verdict = d->verdict;
	ev->hook = hook;
	ev->reason = d->reason;
}

static __always_inline void submit_event(struct event *ev)
{
	if (bpf_ringbuf_output(&events_ringbuf, ev, sizeof(*ev), 0)) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&events_drops, &zero);
		if (n)
			*n += 1;
	}
}

/* One decision of a sock_addr hook: count it, and emit its event unless it is loopback traffic
 * (not egress) or the cgroup's bucket is empty. dst is the destination the application asked,
 * always as 16 bytes (IPv4 mapped). */
static __always_inline void account(struct bpf_sock_addr *ctx, const struct container_config *cfg, __u64 cgroup_id,
				    __u64 now, const struct decision *d, __u8 hook, __u8 l4,
				    const __be32 dst[4], __be16 dst_port)
{
	count_verdict(d->verdict);
	if (d->reason == REASON_LOOPBACK || !take_event_token(cfg, cgroup_id, now))
		return;

	struct event ev = {};
	fill_event_common(&ev, cgroup_id, now, d, hook);
	ev.family = ctx->family;
	ev.l4 = l4;
	ev.sock_type = ctx->type;
	ev.dst_port = dst_port;
	ev.dst_ip[0] = dst[0];
	ev.dst_ip[1] = dst[1];
	ev.dst_ip[2] = dst[2];
	ev.dst_ip[3] = dst[3];
	if (d->verdict == VERDICT_REDIRECTED) {
		ip4_mapped(ev.new_ip, d->new_ip4);
		ev.new_port = bpf_htons(d->new_port);
	}
	struct bpf_sock *sk = ctx->sk;
	if (sk) {
		ev.src_port = bpf_htons((__u16)sk->src_port);
		if (ctx->family == AF_INET) {
			ip4_mapped(ev.src_ip, sk->src_ip4);
		} else {
			ev.src_ip[0] = sk->src_ip6[0];
			ev.src_ip[1] = sk->src_ip6[1];
			ev.src_ip[2] = sk->src_ip6[2];
			ev.src_ip[3] = sk->src_ip6[3];
		}
	}
	submit_event(&ev);
}

/* ---- per-socket original destination, for recvmsg ------------------------------------------ */

/* After a UDP decision that lets the datagram go: remember `original` for replies from `sent_to`
 * (the rewritten destination). When the application itself sends to an address that an earlier
 * rewrite targeted (e.g. straight to CoreDNS), replies from it are its own again. */
static __always_inline void remember_udp(struct bpf_sock_addr *ctx, const __be32 sent_to[4], __be16 sent_port,
					 const __be32 original[4], __be16 original_port, int rewritten)
{
	struct sock_orig_dst *s;

	if (!ctx->sk)
		return;
	s = bpf_sk_storage_get(&sock_orig_dst, ctx->sk, 0, rewritten ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (!s)
		return;
	if (!rewritten && (s->rewritten_ip[0] != sent_to[0] || s->rewritten_ip[1] != sent_to[1] ||
			   s->rewritten_ip[2] != sent_to[2] || s->rewritten_ip[3] != sent_to[3] ||
			   s->rewritten_port != sent_port))
		return;
	s->rewritten_ip[0] = sent_to[0];
	s->rewritten_ip[1] = sent_to[1];
	s->rewritten_ip[2] = sent_to[2];
	s->rewritten_ip[3] = sent_to[3];
	s->rewritten_port = sent_port;
	s->original_ip[0] = original[0];
	s->original_ip[1] = original[1];
	s->original_ip[2] = original[2];
	s->original_ip[3] = original[3];
	s->original_port = original_port;
}

/* ---- the hooks ------------------------------------------------------------------------------ */

/* IPv4 destination in a sock_addr context: `mapped` says whether it sits in user_ip6 as
 * ::ffff:a.b.c.d (connect6/sendmsg6) or in user_ip4. */
static __always_inline int sock_addr_ipv4(struct bpf_sock_addr *ctx, __u8 hook, int mapped, __be32 dst, const struct container_config *cfg,
					  __u64 cgroup_id)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__be16 dst_port = (__be16)ctx->user_port;
	__u8 l4 = l4_of(ctx->type, ctx->protocol);
	struct decision d = {};
	__be32 asked[4];

	ip4_mapped(asked, dst);
	if (unrestricted(cfg, cgroup_id, now, &d))
		;
	else if (!l4)
		set(&d, VERDICT_DENIED, REASON_PROTOCOL);
	else
		decide4(cfg, dst, bpf_ntohs(dst_port), l4, now, &d);

	if (d.verdict == VERDICT_REDIRECTED) {
		if (mapped)
			ctx->user_ip6[3] = d.new_ip4; /* user_ip6[0..2] keep ::ffff: */
		else
			ctx->user_ip4 = d.new_ip4;
		ctx->user_port = bpf_htons(d.new_port);
	}
	if (l4 == L4_UDP && d.verdict != VERDICT_DENIED) {
		__be32 sent_to[4];
		ip4_mapped(sent_to, d.verdict == VERDICT_REDIRECTED ? d.new_ip4 : dst);
		remember_udp(ctx, sent_to, d.verdict == VERDICT_REDIRECTED ? bpf_htons(d.new_port) : dst_port, asked, dst_port,
			     d.verdict == VERDICT_REDIRECTED);
	}
	account(ctx, cfg, cgroup_id, now, &d, hook, l4, asked, dst_port);
	return d.verdict == VERDICT_DENIED ? CLAWKER_VERDICT_DENY : CLAWKER_VERDICT_ALLOW;
}

static __always_inline int sock_addr4(struct bpf_sock_addr *ctx, __u8 hook)
{
	__u64 cgroup_id;
	const struct container_config *cfg = managed_config(&cgroup_id);

	if (!cfg)
		return CLAWKER_VERDICT_ALLOW; /* unmanaged cgroup */
	return sock_addr_ipv4(ctx, hook, 0, ctx->user_ip4, cfg, cgroup_id);
}

static __always_inline int sock_addr6(struct bpf_sock_addr *ctx, __u8 hook)
{
	__u64 cgroup_id;
	const struct container_config *cfg = managed_config(&cgroup_id);

	if (!cfg)
		return CLAWKER_VERDICT_ALLOW;

	__be32 ip[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };
	if (ip[0] == 0 && ip[1] == 0 && ip[2] == bpf_htonl(0xffff))
		return sock_addr_ipv4(ctx, hook, 1, ip[3], cfg, cgroup_id);

	/* Native IPv6: only loopback (::1, and :: which means this host). */
	__u64 now = bpf_ktime_get_boot_ns();
	__u8 l4 = l4_of(ctx->type, ctx->protocol);
	struct decision d = {};
	if (ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && (ip[3] == bpf_htonl(1) || ip[3] == 0))
		set(&d, VERDICT_ALLOWED, REASON_LOOPBACK);
	else if (!unrestricted(cfg, cgroup_id, now, &d))
		set(&d, VERDICT_DENIED, REASON_IPV6);
	account(ctx, cfg, cgroup_id, now, &d, hook, l4, ip, (__be16)ctx->user_port);
	return d.verdict == VERDICT_DENIED ? CLAWKER_VERDICT_DENY : CLAWKER_VERDICT_ALLOW;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	return sock_addr4(ctx, HOOK_CONNECT4);
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_addr4(ctx, HOOK_SENDMSG4);
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	return sock_addr6(ctx, HOOK_CONNECT6);
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_addr6(ctx, HOOK_SENDMSG6);
}

/* A reply's source (user_ip*, user_port) that equals the socket's remembered rewritten destination
 * becomes the destination the application asked for. recvmsg hooks cannot refuse: always 1. */
SEC("cgroup/recvmsg4")
int recvmsg4(struct bpf_sock_addr *ctx)
{
	struct sock_orig_dst *s;

	if (!ctx->sk)
		return 1;
	s = bpf_sk_storage_get(&sock_orig_dst, ctx->sk, 0, 0);
	if (!s)
		return 1;
	if (s->rewritten_ip[0] == 0 && s->rewritten_ip[1] == 0 && s->rewritten_ip[2] == bpf_htonl(0xffff) &&
	    s->rewritten_ip[3] == ctx->user_ip4 && (__u32)s->rewritten_port == ctx->user_port &&
	    s->original_ip[0] == 0 && s->original_ip[1] == 0 && s->original_ip[2] == bpf_htonl(0xffff)) {
		ctx->user_ip4 = s->original_ip[3];
		ctx->user_port = s->original_port;
	}
	return 1;
}

SEC("cgroup/recvmsg6")
int recvmsg6(struct bpf_sock_addr *ctx)
{
	struct sock_orig_dst *s;

	if (!ctx->sk)
		return 1;
	s = bpf_sk_storage_get(&sock_orig_dst, ctx->sk, 0, 0);
	if (!s)
		return 1;
	if (s->rewritten_ip[0] == ctx->user_ip6[0] && s->rewritten_ip[1] == ctx->user_ip6[1] &&
	    s->rewritten_ip[2] == ctx->user_ip6[2] && s->rewritten_ip[3] == ctx->user_ip6[3] &&
	    (__u32)s->rewritten_port == ctx->user_port) {
		ctx->user_ip6[0] = s->original_ip[0];
		ctx->user_ip6[1] = s->original_ip[1];
		ctx->user_ip6[2] = s->original_ip[2];
		ctx->user_ip6[3] = s->original_ip[3];
		ctx->user_port = s->original_port;
	}
	return 1;
}

/* Socket creation (AF_INET/AF_INET6 only reach this hook): a managed cgroup gets TCP and UDP
 * sockets and nothing else: no SOCK_RAW, no ICMP/ICMPv6 datagram (ping) sockets, no SCTP, ... */
SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *sk)
{
	__u64 cgroup_id;
	const struct container_config *cfg = managed_config(&cgroup_id);

	if (!cfg)
		return CLAWKER_VERDICT_ALLOW;
	__u8 l4 = l4_of(sk->type, sk->protocol);
	if (l4)
		return CLAWKER_VERDICT_ALLOW; /* ordinary sockets: their traffic is decided at connect/sendmsg */

	__u64 now = bpf_ktime_get_boot_ns();
	struct decision d = {};
	if (!unrestricted(cfg, cgroup_id, now, &d))
		set(&d, VERDICT_DENIED, REASON_SOCKET_TYPE);
	count_verdict(d.verdict);
	if (take_event_token(cfg, cgroup_id, now)) {
		struct event ev = {};
		fill_event_common(&ev, cgroup_id, now, &d, HOOK_SOCK_CREATE);
		ev.family = sk->family;
		ev.l4 = sk->protocol;
		ev.sock_type = sk->type;
		submit_event(&ev);
	}
	return d.verdict == VERDICT_DENIED ? CLAWKER_VERDICT_DENY : CLAWKER_VERDICT_ALLOW;
}

char _license[] SEC("license") = "Dual MIT/GPL";
