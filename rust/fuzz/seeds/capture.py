#!/usr/bin/env python3
"""Captures the seed corpora of the netlink fuzz targets from the real kernel: the
datagrams a fresh network namespace answers to the library's requests (link and address
dumps; the mptcp_pm family, endpoints and limits; sock_diag MPTCP and TCP dumps with a
live MPTCP connection on the loopback).

    sudo rust/fuzz/seeds/capture.py      # runs itself in a new network namespace

Writes netlink_route/, netlink_genl/, netlink_diag/ beside this file. Never touches the
namespace it was started in: everything happens under `unshare -n`."""

import os
import pathlib
import socket
import struct
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_DONE, NLMSG_ERROR = 3, 2
RTM_GETLINK, RTM_GETADDR = 18, 22
GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME = 0x10, 3, 2
SOCK_DIAG_BY_FAMILY = 20


def nla(kind, value):
    data = struct.pack("HH", 4 + len(value), kind) + value
    return data + b"\0" * (-len(data) % 4)


def exchange(proto, msg_type, flags, payload, seq):
    """Sends one request and returns every datagram of the answer, raw."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)
    s.bind((0, 0))
    s.sendto(struct.pack("IHHII", 16 + len(payload), msg_type, flags, seq, 0) + payload, (0, 0))
    grams = []
    while True:
        d = s.recv(65536)
        grams.append(d)
        off, done = 0, False
        while off + 16 <= len(d):
            ln, ty = struct.unpack_from("IH", d, off)
            if ty in (NLMSG_DONE, NLMSG_ERROR) or not flags & NLM_F_DUMP:
                done = True
            off += (ln + 3) & ~3 if ln else len(d)
        if done:
            s.close()
            return grams


def save(target, name, grams):
    out = HERE / target
    out.mkdir(exist_ok=True)
    for i, g in enumerate(grams):
        (out / f"{name}-{i}").write_bytes(g)
    # Every message alone, too: the fuzzer mutates small inputs better.
    n = 0
    for g in grams:
        off = 0
        while off + 16 <= len(g):
            ln = struct.unpack_from("I", g, off)[0]
            if ln < 16:
                break
            (out / f"{name}-msg{n}").write_bytes(g[off:off + ln])
            n += 1
            off += (ln + 3) & ~3


def sh(*cmds):
    for c in cmds:
        subprocess.run(c, shell=True, check=True)


def inside():
    sh("ip link set lo up",
       "ip link add eth1 type veth peer name eth1p",
       "ip link add dum0 type veth peer name dum0p",
       "ip link set eth1 up", "ip link set eth1p up", "ip link set dum0 up",
       "ip addr add 192.0.2.2/24 dev eth1",
       "ip addr add 2001:db8::2/64 dev eth1 nodad",
       "ip addr add 198.51.100.7/24 dev dum0 valid_lft 300 preferred_lft 100",
       "ip mptcp endpoint add 192.0.2.2 dev eth1 id 3 subflow signal",
       "ip mptcp endpoint add 2001:db8::2 dev eth1 signal port 8080",
       "ip mptcp endpoint add 198.51.100.7 dev dum0 subflow backup fullmesh",
       "ip mptcp limits set subflows 4 add_addr_accepted 2")
    ifi = struct.pack("BxHiII", 0, 0, 0, 0, 0)
    save("netlink_route", "links", exchange(0, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, ifi, 1))
    ifa = struct.pack("BBBBI", 0, 0, 0, 0, 0)
    save("netlink_route", "addrs", exchange(0, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, ifa, 2))

    ctrl = exchange(16, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK,
                    struct.pack("BBH", CTRL_CMD_GETFAMILY, 1, 0)
                    + nla(CTRL_ATTR_FAMILY_NAME, b"mptcp_pm\0"), 3)
    save("netlink_genl", "family", ctrl)
    d = ctrl[0]
    off = 20
    family = None
    while off + 4 <= len(d):
        ln, kind = struct.unpack_from("HH", d, off)
        if kind == 1:
            family = struct.unpack_from("H", d, off + 4)[0]
        off += (ln + 3) & ~3
    save("netlink_genl", "endpoints",
         exchange(16, family, NLM_F_REQUEST | NLM_F_DUMP, struct.pack("BBH", 3, 1, 0), 4))
    save("netlink_genl", "limits",
         exchange(16, family, NLM_F_REQUEST | NLM_F_ACK, struct.pack("BBH", 6, 1, 0), 5))

    # A live MPTCP connection on the loopback, for sock_diag.
    ln = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
    ln.bind(("127.0.0.1", 0))
    ln.listen()
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
    c.connect(ln.getsockname())
    a, _ = ln.accept()
    c.sendall(b"x" * 1000)
    a.recv(1000)
    states = 0xFFF & ~(1 << 10)  # all but LISTEN

    def diag(proto, attr):
        sockid = b"\0" * 48
        req = struct.pack("BBBxI", socket.AF_INET, proto & 0xFF, 1 << 1, states) + sockid
        if attr is not None:
            req += nla(3, struct.pack("I", attr))
        return exchange(4, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, req, 6)

    save("netlink_diag", "mptcp", diag(262, 262))
    save("netlink_diag", "tcp", diag(6, None))
    for s in (a, c, ln):
        s.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["--inside"]:
        inside()
    else:
        os.execvp("unshare", ["unshare", "-n", sys.executable, __file__, "--inside"])
