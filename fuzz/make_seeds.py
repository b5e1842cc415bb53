#!/usr/bin/env python3
"""Writes the hand-made part of the seed corpus (fuzz/corpus/<target>/seed-*): one file per
case, in each target's input format (see the doc comment of each fuzz_targets/*.rs). The
corpus also holds crash reproducers (regress-*) and a few inputs the fuzzer found (found-*)."""
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))

def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(bytes(data))

def csum(b):
    if len(b) % 2:
        b = b + b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s > 0xffff:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

A, B = bytes([198, 18, 0, 2]), bytes([198, 18, 0, 1])
MAC = bytes([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2])

def tcp(sport, dport, seq, ack, flags, opts=b"", payload=b"", win=64240, src=A, dst=B):
    while len(opts) % 4:
        opts += b"\0"
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (5 + len(opts) // 4) << 4, flags, win, 0, 0) + opts
    seg = h + payload
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]

def ipv4(payload, proto=6, frag=0x4000, ip_opts=b"", src=A, dst=B):
    ihl = 5 + len(ip_opts) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), 0x1c46, frag, 64, proto, 0, src, dst) + ip_opts
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload

def eth(payload, ethertype=0x0800, vlan=None):
    tag = b"" if vlan is None else struct.pack("!HH", 0x8100, vlan)
    return MAC + tag + struct.pack("!H", ethertype) + payload

LINUX_SYN_OPTS = bytes([2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7])
SACK = bytes([1, 1, 5, 18]) + struct.pack("!IIII", 1000, 2000, 3000, 4000)
TS = bytes([1, 1, 8, 10]) + struct.pack("!II", 7, 9)

# wire_parse: mode byte (bit 0 fix checksums, bit 1 verify TCP checksum) + frame.
frames = {
    "linux-syn": eth(ipv4(tcp(45678, 8080, 0x12345678, 0, 0x02, LINUX_SYN_OPTS))),
    "syn-ack": eth(ipv4(tcp(8080, 45678, 1, 0x12345679, 0x12, LINUX_SYN_OPTS[:8] + LINUX_SYN_OPTS[16:]))),
    "ack-data-ts": eth(ipv4(tcp(45678, 8080, 1, 2, 0x18, TS, b"hello, world"))),
    "ack-sack": eth(ipv4(tcp(45678, 8080, 1, 2, 0x10, SACK + TS[:0]))),
    "fin-ack": eth(ipv4(tcp(45678, 8080, 1, 2, 0x11))),
    "rst": eth(ipv4(tcp(45678, 8080, 1, 0, 0x04))),
    "ip-options": eth(ipv4(tcp(45678, 8080, 1, 2, 0x10), ip_opts=bytes([7, 7, 4, 0, 0, 0, 0, 1]))),
    "fragment-first": eth(ipv4(tcp(45678, 8080, 1, 2, 0x10, payload=b"x" * 16), frag=0x2000)),
    "fragment-later": eth(ipv4(b"y" * 24, frag=0x0003)),
    "vlan": eth(ipv4(tcp(45678, 8080, 1, 2, 0x10)), ethertype=0x8100),
    "udp": eth(ipv4(b"\0\x35\0\x35\0\x08\0\0", proto=17)),
    "arp-request": MAC + b"\x08\x06" + bytes([0, 1, 8, 0, 6, 4, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 2]),
    "bad-option-len": eth(ipv4(tcp(45678, 8080, 1, 0, 0x02, bytes([2, 3, 5, 0xb4])))),
}
for name, f in frames.items():
    put("wire_parse", name, [2] + list(f))
    put("wire_parse", name + "-fix", [3] + list(f))

# xdp_prog: byte 0 = 0 (raw) + frame, for the same frames aimed at the listener.
for name, f in frames.items():
    if name not in ("syn-ack",):
        put("xdp_prog", "raw-" + name, [0] + list(f))
# Structured mode (byte 0 = 1): shape, [ethertype], ipb, frag, sel, [ip opts], tb, [tcp opts],
# payload, seq(4), skew, bad. See structured() in fuzz_targets/xdp_prog.rs.
def structured(shape=0, ipb=0, frag=0, sel=0, ip_opts=b"", tb=0, tcp_opts=b"", payload=0, seq=(0, 0, 0, 1), skew=0, bad=0, vlan=b""):
    return [1, shape] + list(vlan) + [ipb, frag, sel] + list(ip_opts) + [tb] + list(tcp_opts) + [payload] + list(seq) + [skew, bad]
put("xdp_prog", "plain-syn", structured())
put("xdp_prog", "syn-mss-ws-sack-ts", structured(tb=4 << 2, tcp_opts=[0, 1, 14, 2, 3] + [0] * 8))
put("xdp_prog", "vlan-1", structured(shape=1, vlan=[0, 5]))
put("xdp_prog", "qinq", structured(shape=2 | 4, vlan=[0, 5, 0, 6]))
put("xdp_prog", "ip-options-rr", structured(ipb=2, ip_opts=[2, 2]))
put("xdp_prog", "first-fragment", structured(frag=3 << 5))
put("xdp_prog", "later-fragment", structured(frag=(4 << 5) | 3))
put("xdp_prog", "bad-checksums", structured(bad=3))
# Martian sources (shape bits 5-7: 5 = 127/8, 6 = 0/8, 7 = the destination itself; bit 4 picks
# 127.0.0.1 / 0.0.0.0): plain SYNs to the cookie listener the program must not answer.
put("xdp_prog", "martian-127", structured(shape=5 << 5))
put("xdp_prog", "martian-loopback", structured(shape=(5 << 5) | 0x10))
put("xdp_prog", "martian-0", structured(shape=6 << 5))
put("xdp_prog", "martian-unspecified", structured(shape=(6 << 5) | 0x10))
put("xdp_prog", "martian-own-address", structured(shape=7 << 5))
put("xdp_prog", "ephemeral-port", structured(sel=2 << 2, ip_opts=b"", tcp_opts=b"") [:5] + [0x9c, 0x40] + structured()[5:])

# ICMPv4 errors from a router quoting the stack's (198.18.0.1) segment from its listener or
# ephemeral range (raw xdp_prog frames): the program steers exactly what wire::icmpv4 parses.
R4 = bytes([198, 18, 0, 254])
def icmp4(t, code, rest, data):
    m = struct.pack("!BBH4s", t, code, 0, rest) + data
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]
QUOTE4 = ipv4(tcp(8080, 45678, 1, 2, 0x10), src=B, dst=A)[:28]
QUOTE4_EPH = ipv4(tcp(40001, 5201, 7, 0, 0x02), src=B, dst=A)[:28]
icmp4_frames = {
    "v4-frag-needed": icmp4(3, 4, bytes([0, 0, 5, 0]), QUOTE4),
    "v4-param-problem": icmp4(12, 0, bytes([20, 0, 0, 0]), QUOTE4),
    "v4-param-problem-missing-option": icmp4(12, 1, bytes(4), QUOTE4_EPH),
    "v4-param-problem-code-3": icmp4(12, 3, bytes(4), QUOTE4),
}
for name, m in icmp4_frames.items():
    put("xdp_prog", "raw-" + name, [0] + list(eth(ipv4(m, proto=1, frag=0, src=R4, dst=B))))

# IPv6 (2001:2::/48): the same formats. wire_parse and raw xdp_prog frames, and structured
# IPv6 scripts for xdp_prog (byte 0 = 3): shape (extension header count), sel, one byte per
# extension header, kind, ... See structured6() in fuzz_targets/xdp_prog.rs.
A6 = bytes.fromhex("20010002000000000000000000000002")
B6 = bytes.fromhex("20010002000000000000000000000001")
R6 = bytes.fromhex("200100020000000000000000000000fe")

def tcp6(sport, dport, seq, ack, flags, opts=b"", payload=b"", src=A6, dst=B6):
    while len(opts) % 4:
        opts += b"\0"
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (5 + len(opts) // 4) << 4, flags, 64800, 0, 0) + opts
    seg = h + payload
    c = csum(src + dst + struct.pack("!IxxxB", len(seg), 6) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]

def ipv6(payload, nh=6, exts=(), src=A6, dst=B6):
    """exts: (type, header bytes) in order; each header's first byte is chained here."""
    body = b""
    for i, (_, h) in enumerate(exts):
        nxt = exts[i + 1][0] if i + 1 < len(exts) else nh
        body += bytes([nxt]) + h[1:]
    first = exts[0][0] if exts else nh
    body += payload
    return struct.pack("!IHBB", 0x6005b3a1, len(body), first, 64) + src + dst + body

def icmp6(t, code, rest, data, src=R6, dst=B6):
    m = struct.pack("!BBHI", t, code, 0, rest) + data
    c = csum(src + dst + struct.pack("!IxxxB", len(m), 58) + m)
    return m[:2] + struct.pack("!H", c) + m[4:]

PADN = bytes([0, 0, 1, 4, 0, 0, 0, 0])
QUOTE = ipv6(tcp6(8080, 45678, 0xa1b2c3d4, 1, 0x18, payload=b"a" * 8, src=B6, dst=A6), src=B6, dst=A6)[:40 + 28]
frames6 = {
    "v6-linux-syn": eth(ipv6(tcp6(45678, 8080, 0x12345678, 0, 0x02, LINUX_SYN_OPTS)), 0x86dd),
    "v6-ack-data": eth(ipv6(tcp6(45678, 8080, 1, 2, 0x18, TS, b"hello, world")), 0x86dd),
    "v6-exts": eth(ipv6(tcp6(45678, 8080, 1, 2, 0x10), exts=[(0, PADN), (60, PADN), (43, bytes([0, 0, 0, 0, 0, 0, 0, 0])), (44, bytes(8))]), 0x86dd),
    "v6-nine-exts": eth(ipv6(tcp6(45678, 8080, 1, 2, 0x10), exts=[(60, PADN)] * 9), 0x86dd),
    "v6-first-fragment": eth(ipv6(tcp6(45678, 8080, 1, 2, 0x10, payload=b"x" * 16), exts=[(44, bytes([0, 0, 0, 1, 0, 0, 0, 7]))]), 0x86dd),
    "v6-later-fragment": eth(ipv6(b"y" * 24, exts=[(44, bytes([0, 0, 0x05, 0xc8, 0, 0, 0, 7]))]), 0x86dd),
    "v6-packet-too-big": eth(ipv6(icmp6(2, 0, 1400, QUOTE), nh=58, src=R6), 0x86dd),
    "v6-port-unreachable": eth(ipv6(icmp6(1, 4, 0, QUOTE, src=A6), nh=58), 0x86dd),
    "v6-neighbour-solicitation": eth(ipv6(icmp6(135, 0, 0, B6, src=A6), nh=58), 0x86dd),
}
for name, f in frames6.items():
    put("wire_parse", name, [2] + list(f))
    put("wire_parse", name + "-fix", [3] + list(f))
    put("xdp_prog", "raw-" + name, [0] + list(f))
put("xdp_prog", "v6-syn", [3, 0, 0, 0, 1, 2, 3, 4, 0x02])
put("xdp_prog", "v6-exts", [3, 4, 0, 0, 1, 3, 4, 0, 4, 0, 1, 2, 3, 4, 0x10])
put("xdp_prog", "v6-nine-exts", [3, 9, 0] + [7] * 9 + [0, 1, 2, 3, 4, 0x10])
put("xdp_prog", "v6-first-fragment", [3, 1, 0, 0x0c, 0, 1, 2, 3, 4, 0x10])
put("xdp_prog", "v6-packet-too-big", [3, 0, 0, 0x0a, 0] + [0] * 14)
put("xdp_prog", "v6-dest-unreachable-ephemeral", [3, 0, 0, 0x4a, 4, 0, 7] + [0] * 14)

# endpoint: config (2 bytes), then ops. A peer segment is
# [op 0, sel, flags, seq delta, ack delta, window, options, len, keep].
def seg(sel=0, flags=0x10, sd=0, ad=0, win=0x80, opts=0, ln=0, extra=b"", keep=0):
    return [0, sel, flags, sd, ad, win, opts] + list(extra) + [ln, keep]
HS = seg(flags=0x02) + seg(flags=0x10)
DATA = seg(flags=0x18, ln=200)
RECV = [6, 0x02, 20]
SEND = [6, 0x00, 40]
ADV = lambda step: [4, step]
DEADLINE = [4, 0xe0]
put("endpoint", "passive-handshake", [0, 0] + HS)
put("endpoint", "passive-data-recv", [0, 0] + HS + DATA + RECV + DATA + DATA)
put("endpoint", "passive-send-ack", [0, 0] + HS + SEND + seg(flags=0x10, ad=0) + SEND + DEADLINE + DEADLINE)
put("endpoint", "passive-fin", [0, 0] + HS + DATA + seg(flags=0x11) + [6, 0x05])
put("endpoint", "passive-rst", [0, 0] + HS + seg(flags=0x04))
put("endpoint", "syn-opts", [0, 0] + seg(flags=0x02, opts=0x0f | 0x60, extra=[7, 3]) + seg(flags=0x10, opts=0x18, extra=[5]))
put("endpoint", "cookies-always", [0x40, 0] + HS + DATA)
put("endpoint", "active-synack", [0, 0] + seg(sel=0x80, flags=0x12) + SEND + seg(sel=0x80, flags=0x10))
put("endpoint", "syn-flood", [0, 0] + sum((seg(sel=i, flags=0x02) for i in range(4)), []) + DEADLINE * 6)
put("endpoint", "timers", [0, 0] + HS + SEND + DEADLINE * 12 + ADV(0x7f))
put("endpoint", "out-of-order", [0, 0] + HS + seg(flags=0x18, sd=0x81, ln=200, keep=1) + seg(flags=0x18, ln=200) + RECV)
put("endpoint", "sack-ack", [0, 0] + HS + SEND + seg(opts=0x80, extra=[1, 0, 40, 10]))
# Orphans (config byte 2 bits 5-6: tcp_max_orphans 0 / 1 / 2; bit 7: tcp_mem 1 2 3 pages).
# App ops [6, idx << 3 | kind]: kind 0 = send (next byte x 32 bytes), 5 = close; app[0] is the
# active open, the accepted connections follow.
HS3 = sum((seg(sel=i, flags=0x02) + seg(sel=i, flags=0x10) for i in range(3)), [])
CLOSE1 = [6, 0x0d]
put("endpoint", "max-orphans-0", [0, 0x20] + HS + CLOSE1)
put("endpoint", "max-orphans-1", [0, 0x40] + HS3 + CLOSE1 + CLOSE1 + DEADLINE * 4)
# tcp_mem HIGH 12 KiB, 8 KiB buffers: 8160 bytes queued on app[1], closed (an orphan at HIGH);
# 4096 on the next, then a forced grant (64 bytes into an empty send buffer) takes the charge
# above HIGH: the orphan is reset at its retransmission timer. Then the same with the close
# after the forced grant: reset at close.
FILL = [6, 0x08, 255]
put("endpoint", "orphan-oom-at-rto", [0x0f, 0x80] + HS3 + FILL + CLOSE1 + [6, 0x08, 128] + [6, 0x10, 2] + DEADLINE * 4)
put("endpoint", "orphan-oom-at-close", [0x0f, 0x80] + HS3 + FILL + [6, 0x10, 128] + [6, 0x18, 2] + CLOSE1 + DEADLINE * 4)
