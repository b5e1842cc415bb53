// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * xdptcp steering program.
 *
 * Redirects IPv4 TCP segments whose destination (address, port) belongs to the
 * user-space stack to the AF_XDP socket bound to the receive queue; everything
 * else (ARP, ICMP, IPv6, other ports, anything we cannot parse) goes to the
 * kernel with XDP_PASS, so the kernel keeps answering ARP and ping and SSH keeps
 * working.
 *
 * "Belongs to the stack" means either
 *   (a) (dst addr, dst port) is in `listeners` (0.0.0.0 = any local address), or
 *   (b) dst addr == config.addr and dst port is in [config.eph_lo, config.eph_hi],
 *       the stack's ephemeral range (reserved from the kernel by the operator via
 *       net.ipv4.ip_local_reserved_ports).
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
	CNT_MAX = 5,
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
	__u32 valid;  /* 0 = no ephemeral range configured */
};

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

static __always_inline int belongs_to_stack(__be32 daddr, __be16 dport)
{
	struct listen_key key = { .addr = daddr, .port = dport, .pad = 0 };
	struct steer_config *cfg;
	__u32 zero = 0;
	__u16 port;

	if (bpf_map_lookup_elem(&listeners, &key))
		return 1;
	key.addr = 0;
	if (bpf_map_lookup_elem(&listeners, &key))
		return 1;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !cfg->valid || (cfg->addr && cfg->addr != daddr))
		return 0;
	port = bpf_ntohs(dport);
	return port >= cfg->eph_lo && port <= cfg->eph_hi;
}

static __always_inline int steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	struct tcphdr *tcp;
	__u32 ihl_bytes, doff_bytes, tot_len, pkt_len, qid;

	if ((void *)(eth + 1) > data_end)
		return pass(CNT_MALFORMED); /* runt frame */
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return pass(CNT_PASSED); /* ARP, IPv6, VLAN, ... */

	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return pass(CNT_MALFORMED);
	/* RFC 791 section 3.1: IHL counts 32-bit words, minimum 5. */
	if (iph->version != 4 || iph->ihl < 5)
		return pass(CNT_MALFORMED);
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

	if (!belongs_to_stack(iph->daddr, tcp->dest))
		return pass(CNT_PASSED);

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
