/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SYN cookies in XDP: SipHash-2-4 and the cookie SYN-ACK, bit for bit as xdptcp-core's
 * stack/core/src/tcp/cookie.rs (`SynCookies::generate`, `syn_ack_timestamp`),
 * stack/core/src/tcp/isn.rs (`IsnGenerator::ts_offset`) and the endpoint's `cookie_syn_ack`
 * (stack/core/src/tcp/endpoint/input.rs) compute them. Included by steer.bpf.c after its maps.
 *
 * Bounds (for the verifier and for the reader): every loop has a constant trip count; the
 * SYN's TCP header (at most 60 bytes) is copied to the stack and parsed there by a bpf_loop
 * callback of at most 40 steps; the reply (at most 74 bytes) is built on the stack and written
 * with one bpf_xdp_store_bytes.
 */
#ifndef XDPTCP_SYNCOOKIE_H
#define XDPTCP_SYNCOOKIE_H

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

#define COOKIE_BITS 24
#define COOKIE_MASK ((1u << COOKIE_BITS) - 1)
#define TS_MASK 63u
#define TS_OPT_WSCALE_MASK 0xfu
#define TS_OPT_SACK (1u << 4)
#define MAX_WSCALE 14
#define DEFAULT_MSS 536 /* RFC 9293 section 3.7.1 */

#define ETH_LEN 14
#define IP_LEN 20
#define TCP_MAX 60	 /* largest TCP header */
#define REPLY_TCP_MAX 40 /* MSS 4 + (SACK_PERM|NOP NOP) 2 + TS 10 + NOP WS 4 */

/* ---- SipHash-2-4 (Aumasson, Bernstein), as the siphasher crate computes `hash(bytes)`. */

#define SIP_ROTL(x, b) (__u64)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                       \
	do {                                                                           \
		v0 += v1;                                                              \
		v1 = SIP_ROTL(v1, 13);                                                 \
		v1 ^= v0;                                                              \
		v0 = SIP_ROTL(v0, 32);                                                 \
		v2 += v3;                                                              \
		v3 = SIP_ROTL(v3, 16);                                                 \
		v3 ^= v2;                                                              \
		v0 += v3;                                                              \
		v3 = SIP_ROTL(v3, 21);                                                 \
		v3 ^= v0;                                                              \
		v2 += v1;                                                              \
		v1 = SIP_ROTL(v1, 17);                                                 \
		v1 ^= v2;                                                              \
		v2 = SIP_ROTL(v2, 32);                                                 \
	} while (0)

/* Little-endian load of up to 8 bytes; `n` is a compile-time constant after inlining. */
static __always_inline __u64 sip_load(const __u8 *p, int n)
{
	__u64 m = 0;
	int i;

#pragma unroll
	for (i = 0; i < 8; i++)
		if (i < n)
			m |= (__u64)p[i] << (8 * i);
	return m;
}

/* SipHash-2-4 of `len` bytes (a constant: the loops unroll; at most 24 here). */
static __always_inline __u64 siphash24(const __u64 key[2], const __u8 *in, const int len)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ key[0];
	__u64 v1 = 0x646f72616e646f6dULL ^ key[1];
	__u64 v2 = 0x6c7967656e657261ULL ^ key[0];
	__u64 v3 = 0x7465646279746573ULL ^ key[1];
	__u64 m;
	int i;

#pragma unroll
	for (i = 0; i + 8 <= len; i += 8) {
		m = sip_load(in + i, 8);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	m = ((__u64)len << 56) | sip_load(in + (len & ~7), len & 7);
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/*
 * cookie.rs `hash`: SipHash of ('C' + which, local addr, local port, remote addr, remote
 * port, count big-endian), truncated to 32 bits. Addresses and ports are in network order,
 * as FourTuple::to_bytes writes them.
 */
static __always_inline __u32 cookie_hash(const __u64 key[2], __be32 laddr, __be16 lport,
					 __be32 raddr, __be16 rport, __u32 count, __u8 which)
{
	__u8 in[17];

	in[0] = 'C' + which;
	__builtin_memcpy(&in[1], &laddr, 4);
	__builtin_memcpy(&in[5], &lport, 2);
	__builtin_memcpy(&in[7], &raddr, 4);
	__builtin_memcpy(&in[11], &rport, 2);
	in[13] = count >> 24;
	in[14] = count >> 16;
	in[15] = count >> 8;
	in[16] = count;
	return (__u32)siphash24(key, in, sizeof(in));
}

/* isn.rs `ts_offset`: SipHash of ('T', local addr, remote addr), truncated to 32 bits. */
static __always_inline __u32 ts_offset(const __u64 key[2], __be32 laddr, __be32 raddr)
{
	__u8 in[9];

	in[0] = 'T';
	__builtin_memcpy(&in[1], &laddr, 4);
	__builtin_memcpy(&in[5], &raddr, 4);
	return (__u32)siphash24(key, in, sizeof(in));
}

/* ---- Internet checksum (RFC 1071) over big-endian 16-bit words. */

static __always_inline __u32 csum_add_words(__u32 sum, const __u8 *p, const int len)
{
	int i;

#pragma unroll
	for (i = 0; i + 1 < len; i += 2)
		sum += ((__u32)p[i] << 8) | p[i + 1];
	return sum;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Pseudo-header sum (RFC 9293 section 3.1) of a TCP segment of `tcp_len` bytes. */
static __always_inline __u32 pseudo_sum(__be32 saddr, __be32 daddr, __u32 tcp_len)
{
	__u32 s = bpf_ntohl(saddr), d = bpf_ntohl(daddr);

	return (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + IPPROTO_TCP + tcp_len;
}

/* ---- Parsing the SYN's options (the subset a SYN carries). */

struct syn_opts {
	__u8 hdr[64]; /* the SYN's TCP header, zero beyond doff (64: index masks stay inside) */
	__u32 doff;   /* header length, 20..60 */
	__u32 pos;    /* parse position */
	__u32 tsval;
	__u16 mss;
	__u8 has_mss, has_ws, ws, sack_ok, has_ts, bad;
};

static __always_inline __u8 opt_byte(struct syn_opts *o, __u32 i)
{
	return o->hdr[i & 63];
}

/*
 * One option at o->pos (RFC 9293 section 3.1: kind, length, data; kinds 0 and 1 are one
 * byte). Known options with a wrong length and truncated options mark the SYN "bad": the
 * worker then sees it and decides as it does today. Returns 1 to stop.
 */
static long parse_one(__u32 index, void *ctx)
{
	struct syn_opts *o = ctx;
	__u32 i = o->pos, len;
	__u8 kind;

	if (i >= o->doff || i >= TCP_MAX)
		return 1;
	kind = opt_byte(o, i);
	if (kind == 0) /* End of Option List */
		return 1;
	if (kind == 1) { /* NOP */
		o->pos = i + 1;
		return 0;
	}
	if (i + 1 >= o->doff) {
		o->bad = 1;
		return 1;
	}
	len = opt_byte(o, i + 1);
	if (len < 2 || i + len > o->doff) {
		o->bad = 1;
		return 1;
	}
	switch (kind) {
	case 2: /* MSS, RFC 9293 section 3.7.1 */
		if (len != 4)
			goto bad;
		o->mss = ((__u16)opt_byte(o, i + 2) << 8) | opt_byte(o, i + 3);
		o->has_mss = 1;
		break;
	case 3: /* Window Scale, RFC 7323 section 2.2 */
		if (len != 3)
			goto bad;
		o->ws = opt_byte(o, i + 2);
		o->has_ws = 1;
		break;
	case 4: /* SACK-permitted, RFC 2018 */
		if (len != 2)
			goto bad;
		o->sack_ok = 1;
		break;
	case 5: /* SACK, RFC 2018 section 3: 2 + 8n bytes, as wire/tcp.rs (found by fuzz/xdp_prog) */
		if (len < 10 || (len - 2) % 8 != 0)
			goto bad;
		break;
	case 8: /* Timestamps, RFC 7323 section 3.2 */
		if (len != 10)
			goto bad;
		o->tsval = ((__u32)opt_byte(o, i + 2) << 24) | ((__u32)opt_byte(o, i + 3) << 16) |
			   ((__u32)opt_byte(o, i + 4) << 8) | opt_byte(o, i + 5);
		o->has_ts = 1;
		break;
	default: /* anything else is skipped, as by the worker */
		break;
	}
	o->pos = i + len;
	return 0;
bad:
	o->bad = 1;
	return 1;
}

/* cookie.rs MSS_TABLE: the largest entry not above `mss`, else the first. */
static __always_inline __u32 mss_index(__u16 mss)
{
	if (mss >= 1460)
		return 3;
	if (mss >= 1440)
		return 2;
	if (mss >= 1300)
		return 1;
	return 0;
}

static __always_inline int is_unicast(__be32 a)
{
	__u32 h = bpf_ntohl(a);

	return h != 0 && h != 0xffffffff && (h >> 28) != 0xe;
}

/*
 * A source Linux drops as a martian (ip_route_input_slow: 0/8, 127/8 without route_localnet;
 * fib_validate_source: the local address itself), as the endpoint's `martian_source`: the
 * worker drops such a SYN unanswered (counted martian_src_in), so the fast path must not
 * answer it either.
 */
static __always_inline int is_martian_src(__be32 raddr, __be32 laddr)
{
	__u32 top = bpf_ntohl(raddr) >> 24;

	return top == 0 || top == 127 || raddr == laddr;
}

/*
 * Answers the SYN at (eth, iph, tcp) with a cookie SYN-ACK. Returns XDP_TX when it did,
 * -1 to leave the segment to the normal steering (not a plain SYN, or something the worker
 * must judge). Called only when cookie mode is on for the listener.
 */
static __always_inline int cookie_syn_ack(struct xdp_md *ctx, struct cookie_config *cfg,
					  struct ethhdr *eth, struct iphdr *iph, struct tcphdr *tcp)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct syn_opts o = {};
	__u8 out[ETH_LEN + IP_LEN + REPLY_TCP_MAX] = {};
	__u8 *ip = out + ETH_LEN, *th = ip + IP_LEN;
	__u32 flags, doff, sum, now_ms, ts_now, ts, wsopt, tcp_len, total, period, cookie, idx;
	__be32 laddr = iph->daddr, raddr = iph->saddr;
	__be16 lport = tcp->dest, rport = tcp->source;
	__u32 peer_isn = bpf_ntohl(tcp->seq);
	__u16 mss, csum;
	__u64 now;
	int ws_ok, sack_ok, ts_ok, n;
	long delta;

	flags = ((__u8 *)tcp)[13];
	/* Only a plain SYN (no ACK, RST, FIN; RFC 9293 section 3.10.7.2 "third, check for a SYN"). */
	if ((flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST | TCP_FLAG_FIN)) != TCP_FLAG_SYN)
		return -1;
	if (iph->ihl != 5 || tcp->source == 0 || !is_unicast(raddr) || !is_unicast(laddr) ||
	    is_martian_src(raddr, laddr))
		goto slow;
	/*
	 * A first fragment (MF set; later ones never get here): the worker drops every
	 * fragment (no reassembly, RFC 791 section 3.2), so do we (found by fuzz/xdp_prog).
	 */
	if (iph->frag_off & bpf_htons(0x2000))
		goto slow;
	doff = (__u32)tcp->doff * 4;
	/* No payload (Ethernet padding beyond Total Length is fine), one linear buffer. */
	if (bpf_ntohs(iph->tot_len) != IP_LEN + doff ||
	    bpf_xdp_get_buff_len(ctx) != (__u64)(data_end - data))
		goto slow;
	if (doff < 20 || doff > TCP_MAX)
		goto slow;
	o.doff = doff;
	o.pos = 20;
	if (bpf_xdp_load_bytes(ctx, ETH_LEN + IP_LEN, o.hdr, doff) < 0)
		goto slow;
	/* The worker drops segments with a bad checksum: so do we (RFC 1071 sums to 0xffff). */
	if (csum_fold(csum_add_words(0, (__u8 *)iph, IP_LEN)) != 0)
		goto slow;
	sum = pseudo_sum(raddr, laddr, doff);
	if (csum_fold(csum_add_words(sum, o.hdr, TCP_MAX)) != 0)
		goto slow;
	bpf_loop(TCP_MAX - 20, parse_one, &o, 0);
	if (o.bad)
		goto slow;

	/* Negotiated::from_syn: what we agree to. */
	ws_ok = (cfg->flags & CK_WSCALE) && o.has_ws;
	sack_ok = (cfg->flags & CK_SACK) && o.sack_ok;
	ts_ok = (cfg->flags & CK_TIMESTAMPS) && o.has_ts;
	mss = o.has_mss ? o.mss : DEFAULT_MSS;
	if (mss > cfg->mss)
		mss = cfg->mss;
	if (mss < 64)
		mss = 64;

	/* SynCookies::generate. bpf_ktime_get_ns is CLOCK_MONOTONIC, the worker's clock. */
	now = bpf_ktime_get_ns();
	if (!cfg->period_ns)
		goto slow;
	period = (__u32)(now / cfg->period_ns);
	idx = mss_index(mss);
	cookie = cookie_hash(cfg->key, laddr, lport, raddr, rport, 0, 0) + peer_isn +
		 (period << COOKIE_BITS) +
		 ((cookie_hash(cfg->key, laddr, lport, raddr, rport, period, 1) + idx) & COOKIE_MASK);

	/* Ethernet: back where it came from. */
	__builtin_memcpy(out, eth->h_source, ETH_ALEN);
	__builtin_memcpy(out + ETH_ALEN, eth->h_dest, ETH_ALEN);
	out[12] = 0x08;
	out[13] = 0x00;

	/* TCP (the endpoint's cookie_syn_ack; options in wire/tcp.rs emit_options' layout). */
	__builtin_memcpy(th, &lport, 2);
	__builtin_memcpy(th + 2, &rport, 2);
	th[4] = cookie >> 24;
	th[5] = cookie >> 16;
	th[6] = cookie >> 8;
	th[7] = cookie;
	peer_isn += 1;
	th[8] = peer_isn >> 24;
	th[9] = peer_isn >> 16;
	th[10] = peer_isn >> 8;
	th[11] = peer_isn;
	th[13] = TCP_FLAG_SYN | TCP_FLAG_ACK;
	th[14] = cfg->window >> 8; /* RFC 7323 section 2.2: a SYN's window is never scaled */
	th[15] = cfg->window;
	th[20] = 2; /* MSS: ours */
	th[21] = 4;
	th[22] = cfg->mss >> 8;
	th[23] = cfg->mss;
	tcp_len = 24;
	if (ts_ok) {
		/* SynCookies::syn_ack_timestamp; without timestamps WS and SACK are not offered. */
		now_ms = (__u32)(now / 1000000);
		ts_now = now_ms + ts_offset(cfg->ts_key, laddr, raddr);
		wsopt = ws_ok ? (o.ws < MAX_WSCALE ? o.ws : MAX_WSCALE) : TS_OPT_WSCALE_MASK;
		ts = (ts_now & ~TS_MASK) | wsopt | (sack_ok ? TS_OPT_SACK : 0);
		if (ts > ts_now)
			ts -= TS_MASK + 1;
		th[24] = sack_ok ? 4 : 1;
		th[25] = sack_ok ? 2 : 1;
		th[26] = 8;
		th[27] = 10;
		th[28] = ts >> 24;
		th[29] = ts >> 16;
		th[30] = ts >> 8;
		th[31] = ts;
		th[32] = o.tsval >> 24;
		th[33] = o.tsval >> 16;
		th[34] = o.tsval >> 8;
		th[35] = o.tsval;
		tcp_len = 36;
		if (ws_ok) {
			th[36] = 1;
			th[37] = 3;
			th[38] = 3;
			th[39] = cfg->rcv_shift;
			tcp_len = 40;
		}
	}
	th[12] = (tcp_len / 4) << 4;
	/* Bytes of `th` beyond tcp_len are zero: summing all 40 is the same sum. */
	csum = csum_fold(csum_add_words(pseudo_sum(laddr, raddr, tcp_len), th, REPLY_TCP_MAX));
	th[16] = csum >> 8;
	th[17] = csum;

	/* IPv4 as wire::emit_tcp_frame: no options, ident 0, DF, our TTL. */
	ip[0] = 0x45;
	total = IP_LEN + tcp_len;
	ip[2] = total >> 8;
	ip[3] = total;
	ip[6] = 0x40;
	ip[8] = cfg->ttl;
	ip[9] = IPPROTO_TCP;
	__builtin_memcpy(ip + 12, &laddr, 4);
	__builtin_memcpy(ip + 16, &raddr, 4);
	csum = csum_fold(csum_add_words(0, ip, IP_LEN));
	ip[10] = csum >> 8;
	ip[11] = csum;

	/* Resize the frame to the reply (pointers into it are invalid from here on). */
	n = ETH_LEN + total;
	delta = (long)n - (long)(data_end - data);
	if (bpf_xdp_adjust_tail(ctx, delta) < 0)
		goto slow;
	if (n < ETH_LEN + IP_LEN + 24 || n > (int)sizeof(out))
		return XDP_DROP; /* cannot happen; bounds for the verifier */
	if (bpf_xdp_store_bytes(ctx, 0, out, n) < 0)
		return XDP_DROP; /* the frame was already resized: it is no longer the SYN */
	count(CNT_COOKIE_SYNACK);
	return XDP_TX;
slow:
	count(CNT_COOKIE_SLOW);
	return -1;
}

#endif
