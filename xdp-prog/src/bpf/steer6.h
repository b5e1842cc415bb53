// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * IPv6 steering, included by steer.bpf.c after its maps and helpers (count, pass,
 * belongs_to_stack's rules). The same rules as for IPv4:
 *
 *   TCP to (addr, port) in `listeners6` (:: = any address), or to an address in `addrs6`
 *   (:: = any) with a port in config's ephemeral range (one range for both families, as
 *   Linux's ip_local_reserved_ports) goes to the AF_XDP socket of the receive queue;
 *   everything else IPv6 (NDP, echo, other ports, other protocols) goes to the kernel,
 *   which keeps owning the addresses (it answers neighbour solicitations, as ARP for IPv4).
 *
 * Extension headers (hop-by-hop, routing, destination options, fragment) are walked up to
 * EXT6_MAX headers and EXT6_LEN_MAX bytes, the bounds of xdptcp-core's wire::ipv6; a longer
 * chain goes to the kernel (counted `ext_limit`). Options are not judged here: the stack's
 * parser does that and drops what a Linux host would. ESP and AH end the walk (not TCP).
 *
 * Fragments as for IPv4: a first fragment (offset 0, M set) for a stack port is dropped and
 * counted (fragments_dropped; the stack does not reassemble), a later one goes to the kernel
 * (fragments). An atomic fragment (offset 0, M clear, RFC 6946) is a whole packet.
 *
 * ICMPv6 errors (Destination Unreachable, Packet Too Big, Time Exceeded, Parameter Problem)
 * whose quoted packet is TCP from a stack (address, port) are steered like that flow's
 * segments: the worker of the receive queue hands them to the flow's owner. Other ICMPv6
 * goes to the kernel.
 *
 * Key/value layouts are mirrored in src/maps.rs; keep them in sync.
 */
#ifndef XDPTCP_STEER6_H
#define XDPTCP_STEER6_H

#include <linux/ipv6.h>

#define ADDRS6_MAX 64
#define EXT6_MAX 8	  /* extension headers walked (wire::ipv6::MAX_EXT_HEADERS) */
#define EXT6_LEN_MAX 256  /* their total bytes (wire::ipv6::MAX_EXT_LEN) */

#define NH_HOP 0
#define NH_TCP 6
#define NH_ROUTING 43
#define NH_FRAGMENT 44
#define NH_ICMPV6 58
#define NH_DEST 60

/* IPv6-only counter indices (`counters6`); mirrored in src/maps.rs. IPv6 packets also move
 * the shared counters (redirected, passed, malformed, ...) exactly as IPv4 ones do. */
enum {
	CNT6_REDIRECTED = 0,	   /* IPv6 TCP segments redirected */
	CNT6_ICMP_REDIRECTED = 1,  /* ICMPv6 errors about a stack flow redirected */
	CNT6_EXT_LIMIT = 2,	   /* extension-header chain beyond the bound: passed */
	CNT6_MAX = 3,
};

struct listen6_key {
	__u8 addr[16]; /* network order; all zero = wildcard */
	__be16 port;   /* network order */
	__u16 pad;     /* must be zero */
};

struct addr6_key {
	__u8 addr[16]; /* network order; all zero = any destination address */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LISTENERS_MAX);
	__type(key, struct listen6_key);
	__type(value, __u8);
} listeners6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ADDRS6_MAX);
	__type(key, struct addr6_key);
	__type(value, __u8);
} addrs6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT6_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters6 SEC(".maps");

static __always_inline void count6(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters6, &idx);

	if (c)
		*c += 1;
}

/* LISTEN_* bits if (daddr, dport) is the stack's (a listener, or the ephemeral range on a
 * stack address), 0 if not. */
static __always_inline __u8 belongs_to_stack6(const __u8 *daddr, __be16 dport)
{
	struct listen6_key key = { .port = dport, .pad = 0 };
	struct addr6_key akey = {};
	struct steer_config *cfg;
	__u32 zero = 0;
	__u16 port;
	__u8 *v;

	__builtin_memcpy(key.addr, daddr, 16);
	v = bpf_map_lookup_elem(&listeners6, &key);
	if (v)
		return *v | LISTEN_STEER | LISTEN_LISTENER;
	__builtin_memset(key.addr, 0, 16);
	v = bpf_map_lookup_elem(&listeners6, &key);
	if (v)
		return *v | LISTEN_STEER | LISTEN_LISTENER;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !(cfg->valid & EPH_V6))
		return 0;
	port = bpf_ntohs(dport);
	if (port < cfg->eph_lo || port > cfg->eph_hi)
		return 0;
	__builtin_memcpy(akey.addr, daddr, 16);
	if (bpf_map_lookup_elem(&addrs6, &akey))
		return LISTEN_STEER;
	__builtin_memset(akey.addr, 0, 16);
	return bpf_map_lookup_elem(&addrs6, &akey) ? LISTEN_STEER : 0;
}

/* Results of walk6. */
enum {
	W6_OK = 0,	   /* *nh is the upper layer at *off */
	W6_SHORT = 1,	   /* a header runs past the data */
	W6_LIMIT = 2,	   /* more than EXT6_MAX headers or EXT6_LEN_MAX bytes */
	W6_LATER_FRAG = 3, /* a non-first fragment of protocol *nh */
};

static __always_inline int is_ext6(__u8 nh)
{
	return nh == NH_HOP || nh == NH_ROUTING || nh == NH_DEST || nh == NH_FRAGMENT;
}

/*
 * Walks the extension headers after the fixed header at `ip6` (40 bytes, already bounds
 * checked). Sets *first_frag for a first fragment (offset 0, M set). Every header is at
 * least 8 bytes, so one 8-byte check covers what is read of each.
 */
static __always_inline int walk6(void *ip6, void *data_end, __u8 *nh, __u32 *off,
				 __u8 *first_frag)
{
	__u8 next = ((struct ipv6hdr *)ip6)->nexthdr;
	__u32 o = sizeof(struct ipv6hdr);
	int i;

#pragma unroll
	for (i = 0; i < EXT6_MAX; i++) {
		__u8 *h;
		__u16 fo;

		if (!is_ext6(next))
			break;
		h = ip6 + o;
		if ((void *)(h + 8) > data_end)
			return W6_SHORT;
		if (next == NH_FRAGMENT) {
			/* RFC 8200 section 4.5: offset in the upper 13 bits, M the lowest. */
			fo = ((__u16)h[2] << 8) | h[3];
			if (fo & 0xfff8) {
				*nh = h[0];
				return W6_LATER_FRAG;
			}
			if (fo & 1)
				*first_frag = 1;
			o += 8;
		} else {
			o += ((__u32)h[1] + 1) * 8;
		}
		next = h[0];
		if (o > sizeof(struct ipv6hdr) + EXT6_LEN_MAX)
			return W6_LIMIT;
	}
	if (is_ext6(next))
		return W6_LIMIT;
	*nh = next;
	*off = o;
	return W6_OK;
}

/* Redirects to the XSK of the receive queue, or passes (no_socket) when there is none. */
static __always_inline int to_xsk6(struct xdp_md *ctx, __u32 cnt6)
{
	__u32 qid = ctx->rx_queue_index;

	if (!bpf_map_lookup_elem(&xsks, &qid))
		return pass(CNT_NO_SOCKET);
	if (bpf_redirect_map(&xsks, qid, XDP_PASS) != XDP_REDIRECT)
		return pass(CNT_NO_SOCKET);
	count(CNT_REDIRECTED);
	count6(cnt6);
	return XDP_REDIRECT;
}

/*
 * An ICMPv6 message at `icmp`: an error (RFC 4443 types 1-4: Destination Unreachable,
 * Packet Too Big, Time Exceeded, Parameter Problem, any code, as Linux's icmpv6_notify
 * delivers them to tcp_v6_err) quoting TCP from a stack
 * (address, port) goes to the stack; anything else to the kernel. Only the quoted ports are
 * read here; the worker verifies the checksum and the rest.
 */
static __always_inline int steer_icmp6(struct xdp_md *ctx, __u8 *icmp, void *data_end)
{
	struct ipv6hdr *q;
	__be16 sport;
	__u8 nh = 0, first_frag = 0;
	__u32 off = 0;
	__u8 *tcp;
	int w;

	if ((void *)(icmp + 8) > data_end)
		return pass(CNT_MALFORMED);
	if (icmp[0] < 1 || icmp[0] > 4)
		return pass(CNT_PASSED); /* NDP, echo, ... */
	q = (void *)(icmp + 8);
	if ((void *)(q + 1) > data_end)
		return pass(CNT_MALFORMED);
	if (q->version != 6)
		return pass(CNT_MALFORMED);
	w = walk6(q, data_end, &nh, &off, &first_frag);
	if (w == W6_SHORT)
		return pass(CNT_MALFORMED);
	if (w == W6_LIMIT) {
		count6(CNT6_EXT_LIMIT);
		return pass(CNT_PASSED);
	}
	if (w != W6_OK || nh != NH_TCP)
		return pass(CNT_PASSED);
	tcp = (void *)q + off;
	if ((void *)(tcp + 8) > data_end)
		return pass(CNT_MALFORMED); /* RFC 4443 2.4 (c) quotes far more than 8 bytes */
	__builtin_memcpy(&sport, tcp, sizeof(sport));
	/* The quoted segment was sent by the stack: its source is the stack's side. */
	if (!belongs_to_stack6(q->saddr.in6_u.u6_addr8, sport))
		return pass(CNT_PASSED);
	return to_xsk6(ctx, CNT6_ICMP_REDIRECTED);
}

static __always_inline int steer6(struct xdp_md *ctx, struct ethhdr *eth, void *data_end)
{
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	__u32 off = 0, doff_bytes, plen, pkt_len;
	__u8 nh = 0, first_frag = 0;
	struct tcphdr *tcp;
	int w;

	if ((void *)(ip6 + 1) > data_end)
		return pass(CNT_MALFORMED);
	if (ip6->version != 6)
		return pass(CNT_MALFORMED);
	w = walk6(ip6, data_end, &nh, &off, &first_frag);
	if (w == W6_SHORT)
		return pass(CNT_MALFORMED);
	if (w == W6_LIMIT) {
		count6(CNT6_EXT_LIMIT);
		return pass(CNT_PASSED);
	}
	if (w == W6_LATER_FRAG)
		return pass(nh == NH_TCP ? CNT_FRAGMENT : CNT_PASSED);
	if (nh == NH_ICMPV6 && !first_frag)
		return steer_icmp6(ctx, (void *)ip6 + off, data_end);
	if (nh != NH_TCP)
		return pass(CNT_PASSED);

	tcp = (void *)ip6 + off;
	if ((void *)(tcp + 1) > data_end)
		return pass(CNT_MALFORMED);
	doff_bytes = (__u32)tcp->doff * 4;
	if (doff_bytes < sizeof(*tcp) || (void *)tcp + doff_bytes > data_end)
		return pass(CNT_MALFORMED);
	/* Payload Length must cover the headers and fit in the frame (all frags). */
	plen = bpf_ntohs(ip6->payload_len);
	pkt_len = bpf_xdp_get_buff_len(ctx);
	if (sizeof(*ip6) + plen < off + doff_bytes ||
	    pkt_len < sizeof(*eth) + sizeof(*ip6) ||
	    plen > pkt_len - sizeof(*eth) - sizeof(*ip6))
		return pass(CNT_MALFORMED);

	if (!belongs_to_stack6(ip6->daddr.in6_u.u6_addr8, tcp->dest))
		return pass(CNT_PASSED);
	if (first_frag) {
		count(CNT_FRAG_DROPPED); /* as IPv4 first fragments, see steer() */
		return XDP_DROP;
	}
	return to_xsk6(ctx, CNT6_REDIRECTED);
}

#endif /* XDPTCP_STEER6_H */
