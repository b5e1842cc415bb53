// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * xdptcp wire fault injector: a tc egress (tcx) program for a Linux peer's veth.
 *
 * The kernel of the test machines has no netem, so loss on the path between a
 * Linux peer and the stack is made here: on the peer's veth egress, each TCP
 * packet (IPv4 or IPv6 without extension headers) that matches the optional
 * port filter is
 *   - dropped (TC_ACT_SHOT) with probability drop_ppm / 1e6, or, when
 *     every_nth != 0, deterministically every every_nth-th matching packet;
 *   - otherwise duplicated with probability dup_ppm / 1e6 (a clone sent out of
 *     the same interface, tagged with DUP_MARK so it is not processed again).
 * Everything else passes untouched.
 *
 * A "packet" is one skb as tc sees it: with GSO on, one skb can be a burst of
 * segments that are split later; the veth test setup turns tx offloads off.
 *
 * Layouts below are mirrored in src/loss.rs; keep them in sync.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define PPM 1000000u
/* skb->mark of our own duplicates (arbitrary, "xdup"). */
#define DUP_MARK 0x78647570u

struct loss_config {
	__u32 drop_ppm;
	__u32 every_nth; /* 0 = random mode */
	__u32 dup_ppm;
	__u16 port;      /* host order; 0 = any port */
	__u16 pad;
};

/* Shared (not per-CPU) state: the deterministic mode needs one global sequence. */
struct loss_state {
	__u64 nth_seq;
};

/* Counter indices; mirrored in src/loss.rs. */
enum {
	CNT_SEEN = 0,       /* matching TCP packets */
	CNT_DROPPED = 1,
	CNT_DUPLICATED = 2,
	CNT_OTHER = 3,      /* not matching: passed untouched */
	CNT_MAX = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loss_config);
} loss_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loss_state);
} loss_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} loss_counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&loss_counters, &idx);

	if (c)
		*c += 1;
}

/* Returns 1 if the packet is TCP and matches `port` (0 = any), else 0. */
static __always_inline int tcp_matches(struct __sk_buff *skb, __u16 port)
{
	__u32 l4;
	__u8 proto;
	__be16 ports[2];

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
			return 0;
		/* Non-first fragments carry no TCP header. */
		if (ip.frag_off & bpf_htons(0x1fff))
			return 0;
		proto = ip.protocol;
		l4 = ETH_HLEN + ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
			return 0;
		proto = ip6.nexthdr;
		l4 = ETH_HLEN + sizeof(ip6);
	} else {
		return 0;
	}
	if (proto != IPPROTO_TCP)
		return 0;
	if (port == 0)
		return 1;
	if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) < 0)
		return 0;
	return ports[0] == bpf_htons(port) || ports[1] == bpf_htons(port);
}

static __always_inline int chance(__u32 ppm)
{
	return ppm >= PPM || bpf_get_prandom_u32() % PPM < ppm;
}

/* tcx/egress: libbpf attaches a tcx link with the section's expected attach type. */
SEC("tcx/egress")
int xdptcp_loss(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct loss_config *cfg;
	struct loss_state *st;

	if (skb->mark == DUP_MARK) {
		/* Our own duplicate coming through again: send it as it is. */
		skb->mark = 0;
		return TC_ACT_OK;
	}
	cfg = bpf_map_lookup_elem(&loss_cfg, &zero);
	st = bpf_map_lookup_elem(&loss_state, &zero);
	if (!cfg || !st || !tcp_matches(skb, cfg->port)) {
		count(CNT_OTHER);
		return TC_ACT_OK;
	}
	count(CNT_SEEN);
	if (cfg->every_nth) {
		__u64 n = __sync_fetch_and_add(&st->nth_seq, 1) + 1;

		if (n % cfg->every_nth == 0) {
			count(CNT_DROPPED);
			return TC_ACT_SHOT;
		}
	} else if (cfg->drop_ppm && chance(cfg->drop_ppm)) {
		count(CNT_DROPPED);
		return TC_ACT_SHOT;
	}
	if (cfg->dup_ppm && chance(cfg->dup_ppm)) {
		__u32 mark = skb->mark;

		skb->mark = DUP_MARK;
		if (bpf_clone_redirect(skb, skb->ifindex, 0) == 0)
			count(CNT_DUPLICATED);
		skb->mark = mark;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
