/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* The datapath's maps (BPF side). Layouts: clawker_datapath.h. The loader (bpfman load) pins every
 * map here except sock_orig_dst under its pin directory (default /sys/fs/bpf/clawker/<name>). */
#ifndef CLAWKER_MAPS_H
#define CLAWKER_MAPS_H

#include "clawker_common.h"
#include "clawker_datapath.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CLAWKER_MAX_CONTAINERS);
	__type(key, __u64); /* cgroup v2 id */
	__type(value, struct container_config);
} container_map SEC(".maps");

/* One route table. BPF_F_NO_PREALLOC: a table costs memory for the routes it holds, not for
 * CLAWKER_MAX_ROUTES, and user space builds a fresh one on every replacement. */
struct route_table {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CLAWKER_MAX_ROUTES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct route_key);
	__type(value, struct route_value);
};

/* Never read by the programs. Declared so the object's BTF has the full definitions of route_key
 * and route_value (clang emits only forward declarations for types reached solely through
 * route_map's __array) and so user space has the spec from which it builds every new table. */
struct route_table route_table SEC(".maps");

/* Slot 0 holds the current route table; replacing it is one atomic pointer exchange. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct route_table);
} route_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CLAWKER_MAX_DNS_CACHE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __be32); /* IPv4 address */
	__type(value, struct dns_cache_value);
} dns_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CLAWKER_MAX_CONTAINERS);
	__type(key, __u64);   /* cgroup id */
	__type(value, __u64); /* bypass until, CLOCK_BOOTTIME ns */
} bypass_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VERDICT_MAX);
	__type(key, __u32);   /* enum verdict */
	__type(value, __u64); /* decisions */
} metrics_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CLAWKER_EVENTS_RING_SIZE);
} events_ringbuf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64); /* events lost because events_ringbuf was full */
} events_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CLAWKER_MAX_CONTAINERS);
	__type(key, __u64); /* cgroup id */
	__type(value, struct ratelimit_state);
} ratelimit_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CLAWKER_MAX_CONTAINERS);
	__type(key, __u64);   /* cgroup id */
	__type(value, __u64); /* events suppressed by the token bucket */
} ratelimit_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_orig_dst);
} sock_orig_dst SEC(".maps");

#endif /* CLAWKER_MAPS_H */
