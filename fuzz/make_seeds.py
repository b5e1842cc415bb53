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
put("xdp_prog", "ephemeral-port", structured(sel=2 << 2, ip_opts=b"", tcp_opts=b"") [:5] + [0x9c, 0x40] + structured()[5:])

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
