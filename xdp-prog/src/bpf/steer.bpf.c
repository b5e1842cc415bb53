// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * xdptcp steering program.
 *
 * Redirects IPv4 TCP segments whose destination (address, port) belongs to the
 * user-space stack to the AF_XDP socket bound to the receive queue; everything
 * else (ARP, ICMP, other ports, anything we cannot parse) goes to the
 * kernel with XDP_PASS, so the kernel keeps answering ARP and ping and SSH keeps
 * working. IPv6 follows the same rules in steer6.h (its own listener and address
 * maps; NDP stays with the kernel; ICMPv6 errors about stack flows are steered).
 * ICMP errors quoting a segment the stack sent are the exception (icmp.h): they go to the
 * stack, which acts on them as Linux does (PMTU, connect refused).
 *
 * "Belongs to the stack" means either
 *   (a) (dst addr, dst port) is in `listeners` (0.0.0.0 = any local address), or
 *   (b) dst addr == config.addr and dst port is in [config.eph_lo, config.eph_hi],
 *       the stack's ephemeral range (reserved from the kernel by the operator via
 *       net.ipv4.ip_local_reserved_ports).
 *
 * SYN cookies (`xdp_syncookies = 1`): a SYN to a listener in cookie mode (`cookie_config.mode` 2, or 1
 * with the listener's LISTEN_COOKIES bit set by user space while its SYN queue overflows) is
 * answered here with a cookie SYN-ACK (XDP_TX, rewritten in place), computed exactly as
 * xdptcp-core's `SynCookies::generate` / `syn_ack_timestamp` and the endpoint's
 * `cookie_syn_ack` do, under the secrets user space shares through `cookie_config`. The ACK
 * that completes the handshake is steered to the worker as usual, which validates it (once).
 * SYNs the fast path does not fully understand (IP options, payload, odd TCP options, bad
 * checksums, multi-buffer frames) go to the worker unchanged.
 *
 * Key/value layouts below are mirrored in src/maps.rs; keep them in sync.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define XSKS_MAX 64
#define LISTENERS_MAX 4096

/* Counter indices; mirrored in src/maps.rs. */
enum {
	CNT_REDIRECTED = 0,
	CNT_PASSED = 1,
	CNT_MALFORMED = 2,
	CNT_NO_SOCKET = 3,
	CNT_FRAGMENT = 4,
	CNT_COOKIE_SYNACK = 5, /* SYNs answered here with a cookie SYN-ACK (XDP_TX) */
	CNT_COOKIE_SLOW = 6,   /* SYNs in cookie mode left to the worker (odd or bad header) */
	CNT_FRAG_DROPPED = 7,  /* first fragments (MF, offset 0) for the stack: XDP_DROP */
	CNT_ICMP = 8,	       /* ICMP errors quoting a stack segment (icmp.h), steered */
	CNT_MAX = 9,
};

/* Value bits of the `listeners` map. */
#define LISTEN_STEER 1	 /* steer to the stack (always set) */
#define LISTEN_COOKIES 2 /* tcp_syncookies = 1 and this listener's SYN queue overflows */
#define LISTEN_LISTENER 0x80 /* internal: the destination is a listener (not stored) */

/* cookie_config.flags */
#define CK_ENABLED 1 /* xdp_syncookies = 1 */
#define CK_TIMESTAMPS 2
#define CK_SACK 4
#define CK_WSCALE 8

/*
 * Shared with user space (one entry). SipHash keys as the two little-endian u64 halves of the
 * 16-byte secret (siphasher's `new_with_key`).
 */
struct cookie_config {
	__u64 key[2];	   /* current SYN-cookie secret */
	__u64 prev_key[2]; /* previous secret (user space validates with it; unused here) */
	__u64 ts_key[2];   /* the ISN / timestamp-offset secret (IsnGenerator) */
	__u64 period_ns;   /* cookie period (64 s), > 0 */
	__u32 flags;	   /* CK_* */
	__u16 mss;	   /* our MSS: advertised, and the cap of the encoded one */
	__u16 window;	   /* SYN-ACK window: min(rmem, 65535) */
	__u8 rcv_shift;	   /* our window-scale shift */
	__u8 mode;	   /* tcp_syncookies: 0, 1, 2 */
	__u8 ttl;
	__u8 has_prev;
	__u32 pad;
};

struct listen_key {
	__be32 addr; /* network order; 0 = wildcard */
	__be16 port; /* network order */
	__u16 pad;   /* must be zero */
};

struct steer_config {
	__be32 addr;  /* the stack's own address, network order; 0 = any of them */
	__u16 eph_lo; /* host order, inclusive */
	__u16 eph_hi; /* host order, inclusive */
	__u32 valid;  /* EPH_V4 | EPH_V6: the families the range is steered for (0: none) */
};

/* steer_config.valid bits: an IPv6-only stack steers no IPv4 (the kernel keeps it all). */
#define EPH_V4 1
#define EPH_V6 2

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XSKS_MAX);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LISTENERS_MAX);
	__type(key, struct listen_key);
	__type(value, __u8);
} listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_config);
} config SEC(".maps");

/*
 * Two slots and a selector: user space writes the slot not in use, then flips
 * `cookie_slot`, so a SYN never reads a half-written secret (array updates are plain copies).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct cookie_config);
} cookie_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cookie_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		*c += 1;
}

static __always_inline int pass(__u32 idx)
{
	count(idx);
	return XDP_PASS;
}

/*
 * Whether (daddr, dport) is the stack's: the listener's value bits (LISTEN_*) for a listener,
 * LISTEN_STEER for the ephemeral range, 0 for not ours.
 */
static __always_inline __u8 belongs_to_stack(__be32 daddr, __be16 dport)
{
	struct listen_key key = { .addr = daddr, .port = dport, .pad = 0 };
	struct steer_config *cfg;
	__u32 zero = 0;
	__u16 port;
	__u8 *v;

	v = bpf_map_lookup_elem(&listeners, &key);
	if (v)
		return *v | LISTEN_STEER | LISTEN_LISTENER;
	key.addr = 0;
	v = bpf_map_lookup_elem(&listeners, &key);
	if (v)
		return *v | LISTEN_STEER | LISTEN_LISTENER;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !(cfg->valid & EPH_V4) || (cfg->addr && cfg->addr != daddr))
		return 0;
	port = bpf_ntohs(dport);
	return port >= cfg->eph_lo && port <= cfg->eph_hi ? LISTEN_STEER : 0;
}

#include "syncookie.h"
#include "icmp.h"

/* Cookie mode for a listener (tcp_syncookies semantics): 2 always, 1 while flagged. */
static __always_inline struct cookie_config *cookie_mode(__u8 listen_bits)
{
	struct cookie_config *cfg;
	__u32 zero = 0, *slot, idx;

	slot = bpf_map_lookup_elem(&cookie_slot, &zero);
	if (!slot)
		return NULL;
	idx = *slot & 1;
	cfg = bpf_map_lookup_elem(&cookie_config, &idx);
	if (!cfg || !(cfg->flags & CK_ENABLED))
		return NULL;
	if (cfg->mode == 2 || (cfg->mode == 1 && (listen_bits & LISTEN_COOKIES)))
		return cfg;
	return NULL;
}

#include "steer6.h"

static __always_inline int steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	struct tcphdr *tcp;
	__u32 ihl_bytes, doff_bytes, tot_len, pkt_len, qid;
	__u8 bits;

	if ((void *)(eth + 1) > data_end)
		return pass(CNT_MALFORMED); /* runt frame */
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return steer6(ctx, eth, data_end);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return pass(CNT_PASSED); /* ARP, VLAN, ... */

	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return pass(CNT_MALFORMED);
	/* RFC 791 section 3.1: IHL counts 32-bit words, minimum 5. */
	if (iph->version != 4 || iph->ihl < 5)
		return pass(CNT_MALFORMED);
	if (iph->protocol == IPPROTO_ICMP)
		return steer_icmp(ctx, iph); /* icmp.h: errors for the stack's flows */
	if (iph->protocol != IPPROTO_TCP)
		return pass(CNT_PASSED);
	/*
	 * RFC 791 section 3.2: only the fragment with offset 0 carries the
	 * transport header; later fragments cannot be classified by port.
	 */
	if (iph->frag_off & bpf_htons(0x1fff))
		return pass(CNT_FRAGMENT);

	ihl_bytes = (__u32)iph->ihl * 4; /* 20..60: bounded for the verifier */
	tcp = (void *)iph + ihl_bytes;
	if ((void *)(tcp + 1) > data_end)
		return pass(CNT_MALFORMED);
	/* RFC 9293 section 3.1: Data Offset counts 32-bit words, minimum 5. */
	doff_bytes = (__u32)tcp->doff * 4;
	if (doff_bytes < sizeof(*tcp) || (void *)tcp + doff_bytes > data_end)
		return pass(CNT_MALFORMED);

	/* Total Length must cover both headers and fit in the frame (all frags). */
	tot_len = bpf_ntohs(iph->tot_len);
	pkt_len = bpf_xdp_get_buff_len(ctx);
	if (tot_len < ihl_bytes + doff_bytes || pkt_len < sizeof(*eth) ||
	    tot_len > pkt_len - sizeof(*eth))
		return pass(CNT_MALFORMED);

	bits = belongs_to_stack(iph->daddr, tcp->dest);
	if (!bits)
		return pass(CNT_PASSED);
	/*
	 * A first fragment (MF set, offset 0) for the stack: the stack does not reassemble
	 * (a TCP peer sets DF, RFC 9293 section 3.7.2), so it is dropped here and counted.
	 * The later fragments go to the kernel (no port to classify them by); without
	 * fragment 0 the kernel can never complete the datagram, so it never answers for a
	 * stack port, and it discards them after ipfrag_time without an ICMP (ip_expire sends
	 * "reassembly time exceeded" only when it holds the first fragment).
	 */
	if (iph->frag_off & bpf_htons(0x2000)) {
		count(CNT_FRAG_DROPPED);
		return XDP_DROP;
	}
	/* A SYN to a listener in cookie mode: answered here when it is plain enough. */
	if (tcp->syn && (bits & LISTEN_LISTENER)) {
		struct cookie_config *ck = cookie_mode(bits);

		if (ck) {
			int act = cookie_syn_ack(ctx, ck, eth, iph, tcp);

			if (act >= 0)
				return act;
		}
	}

	/*
	 * An XSK must be bound to the queue the packet arrived on; redirecting to
	 * a missing entry would drop it, so check first and let the kernel see it.
	 */
	qid = ctx->rx_queue_index;
	if (!bpf_map_lookup_elem(&xsks, &qid))
		return pass(CNT_NO_SOCKET);
	if (bpf_redirect_map(&xsks, qid, XDP_PASS) != XDP_REDIRECT)
		return pass(CNT_NO_SOCKET); /* socket went away in between */
	count(CNT_REDIRECTED);
	return XDP_REDIRECT;
}

SEC("xdp")
int xdptcp_steer(struct xdp_md *ctx)
{
	return steer(ctx);
}

/* Same body for multi-buffer (jumbo MTU) frames; headers are in the first buffer. */
SEC("xdp.frags")
int xdptcp_steer_frags(struct xdp_md *ctx)
{
	return steer(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
