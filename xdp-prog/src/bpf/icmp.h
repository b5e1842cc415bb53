/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ICMPv4 errors for the stack's flows (included by steer.bpf.c after its maps and
 * belongs_to_stack()).
 *
 * A destination unreachable (type 3, codes 0..15, code 4 = fragmentation needed, RFC 1191),
 * time exceeded (type 11, codes 0..1) or parameter problem (type 12, codes 0..2: RFC 792's
 * pointer, RFC 1108's missing required option, RFC 1812's bad length; Linux's tcp_v4_err
 * fails a connect on it with EPROTO) quotes the IPv4 header and the first 8 bytes of the
 * datagram that caused it (RFC 792). The codes are those wire/icmpv4.rs parses. When that datagram is a TCP segment the stack SENT --
 * its source (address, port) is one the program steers TCP to, i.e. a listener or the
 * stack's ephemeral range: the rule for TCP, applied to the quoted source instead of the
 * destination -- the error goes to the AF_XDP socket of the queue it arrived on. RSS hashed
 * the ICMP packet, not the flow, so the worker there hands it to the flow's owner
 * (stack/runtime/src/handoff.rs). Everything else ICMP (echo, errors about the kernel's own
 * traffic, redirects, anything malformed or fragmented) stays with the kernel: ping keeps
 * working. The ICMP checksum is the worker's to verify (it drops and counts a bad one).
 */
#ifndef XDPTCP_ICMP_H
#define XDPTCP_ICMP_H

#define ICMP_TYPE_DEST_UNREACH 3
#define ICMP_TYPE_TIME_EXCEEDED 11
#define ICMP_TYPE_PARAMETERPROB 12
#define NR_PARAMETERPROB_CODES 2 /* codes 0..2 */
#define ICMP_HDR_LEN 8
#define NR_DEST_UNREACH_CODES 15 /* codes 0..15 (Linux NR_ICMP_UNREACH) */

/* Redirects to the socket of the arrival queue (as steer() does for TCP). */
static __always_inline int icmp_redirect(struct xdp_md *ctx)
{
	__u32 qid = ctx->rx_queue_index;

	if (!bpf_map_lookup_elem(&xsks, &qid))
		return pass(CNT_NO_SOCKET);
	if (bpf_redirect_map(&xsks, qid, XDP_PASS) != XDP_REDIRECT)
		return pass(CNT_NO_SOCKET);
	count(CNT_REDIRECTED);
	return XDP_REDIRECT;
}

/* `iph` is a checked IPv4 header (version 4, IHL >= 5, in the frame) with protocol ICMP. */
static __always_inline int steer_icmp(struct xdp_md *ctx, struct iphdr *iph)
{
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *icmp;
	struct iphdr *inner;
	__be16 *ports;
	__u32 ihl_bytes, inner_ihl;

	/* A fragmented ICMP message is the kernel's to reassemble. */
	if (iph->frag_off & bpf_htons(0x3fff))
		return pass(CNT_PASSED);
	ihl_bytes = (__u32)iph->ihl * 4;
	icmp = (void *)iph + ihl_bytes;
	if ((void *)(icmp + ICMP_HDR_LEN) > data_end)
		return pass(CNT_PASSED);
	if (!((icmp[0] == ICMP_TYPE_DEST_UNREACH && icmp[1] <= NR_DEST_UNREACH_CODES) ||
	      (icmp[0] == ICMP_TYPE_TIME_EXCEEDED && icmp[1] <= 1) ||
	      (icmp[0] == ICMP_TYPE_PARAMETERPROB && icmp[1] <= NR_PARAMETERPROB_CODES)))
		return pass(CNT_PASSED);

	/* The quoted datagram: an IPv4 header and at least 8 bytes of TCP. */
	inner = (void *)(icmp + ICMP_HDR_LEN);
	if ((void *)(inner + 1) > data_end)
		return pass(CNT_PASSED);
	if (inner->version != 4 || inner->ihl < 5 || inner->protocol != IPPROTO_TCP ||
	    (inner->frag_off & bpf_htons(0x1fff)))
		return pass(CNT_PASSED);
	/* An error is sent to the quoted datagram's source. */
	if (inner->saddr != iph->daddr)
		return pass(CNT_PASSED);
	inner_ihl = (__u32)inner->ihl * 4; /* 20..60 */
	ports = (void *)inner + inner_ihl;
	if ((void *)ports + 8 > data_end)
		return pass(CNT_PASSED);
	/* Reversed TCP rule: the quoted source (address, port) must be the stack's. */
	if (!belongs_to_stack(inner->saddr, ports[0]))
		return pass(CNT_PASSED);
	count(CNT_ICMP);
	return icmp_redirect(ctx);
}

#endif /* XDPTCP_ICMP_H */
