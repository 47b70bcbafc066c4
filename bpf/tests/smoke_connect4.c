/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* Test-bed smoke program: a cgroup/connect4 hook that denies (EPERM) IPv4 connects whose
 * destination port is a key of the map `smoke_deny_ports`, and allows everything else.
 *
 * Key: the destination port in network byte order (exactly as `user_port` carries it), so user
 * space writes it as two big-endian bytes on any host: port 8080 -> `key hex 1f 90`.
 * Value: any byte (presence is what counts).
 *
 * Load and attach (as test/e2e does):
 *   bpftool prog load bpf/build/tests/smoke_connect4.o PIN/prog type cgroup/connect4 pinmaps PIN/maps
 *   bpftool map update pinned PIN/maps/smoke_deny_ports key hex 1f 90 value hex 01
 *   bpftool cgroup attach CGROUP_V2_DIR connect4 pinned PIN/prog
 */
#include "clawker_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __be16);  /* destination port, network byte order */
	__type(value, __u8);
} smoke_deny_ports SEC(".maps");

SEC("cgroup/connect4")
int smoke_connect4(struct bpf_sock_addr *ctx)
{
	/* user_port: 16-bit port in network byte order in the low half of a __u32. */
	__be16 dst_port = (__be16)ctx->user_port;

	if (bpf_map_lookup_elem(&smoke_deny_ports, &dst_port))
		return CLAWKER_VERDICT_DENY;
	return CLAWKER_VERDICT_ALLOW;
}

char _license[] SEC("license") = "Dual MIT/GPL";
