/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* Shared definitions for Clawker's eBPF programs.
 *
 * Programs include <linux/bpf.h> (kernel UAPI, from linux-libc-dev) and libbpf's
 * <bpf/bpf_helpers.h> / <bpf/bpf_endian.h> (from libbpf-dev); no vmlinux.h is needed. */
#ifndef CLAWKER_COMMON_H
#define CLAWKER_COMMON_H

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Return values of cgroup/sock_addr programs (connect4/6, sendmsg4/6, ...). */
#define CLAWKER_VERDICT_DENY  0 /* connect() fails with EPERM */
#define CLAWKER_VERDICT_ALLOW 1

#endif /* CLAWKER_COMMON_H */
