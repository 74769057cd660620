#!/usr/bin/env python3
"""mptcp_peer: move N bytes over one MPTCP connection and report what the kernel did.

Run it inside a network namespace (``ip netns exec NS python3 mptcp_peer.py ...``):

  serve --port P [--bind 0.0.0.0] [--once] [--send N]   # sink (default) or source
  send  --to ADDR --port P --bytes N                    # client, data client -> server
  recv  --to ADDR --port P [--bytes N]                  # client, data server -> client

Common options: --timeout SEC (the whole run; an error JSON at the end of it),
--rate BYTES_PER_SEC (slow sender), --hold SEC (keep the connection open after the
data phase), --sample-interval SEC, --status-file PATH (the latest sample, rewritten
atomically while the connection is open), --rate-report (progress lines on stderr),
--tcp (plain TCP socket, to provoke a fallback), --info-method auto|full|split.

stdout gets exactly one JSON object per connection (README.md beside this file
lists the fields); the exit status is 0 when every connection ended well, 1 on an
error (the JSON then has "ok": false and "error"), 2 on bad usage.

The kernel is asked through getsockopt(SOL_MPTCP): MPTCP_INFO (struct mptcp_info),
MPTCP_FULL_INFO (one consistent snapshot of the subflows' addresses and tcp_info,
kernel >= 6.10), else MPTCP_SUBFLOW_ADDRS + MPTCP_TCPINFO (two calls, index-matched).
Python 3.11 standard library only (ctypes for the getsockopt calls that need an
input buffer).
"""

from __future__ import annotations

import argparse
import array
import ctypes
import errno
import fcntl
import json
import os
import select
import socket
import struct
import sys
import termios
import time

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1
MPTCP_TCPINFO = 2
MPTCP_SUBFLOW_ADDRS = 3
MPTCP_FULL_INFO = 4
MPTCP_INFO_FLAG_FALLBACK = 1 << 0
MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED = 1 << 1

# struct mptcp_info (include/uapi/linux/mptcp.h, kernel 6.18), natural alignment.
_MPTCP_INFO_FIELDS = (
    ("subflows", "B"), ("add_addr_signal", "B"), ("add_addr_accepted", "B"),
    ("subflows_max", "B"), ("add_addr_signal_max", "B"), ("add_addr_accepted_max", "B"),
    (None, "2x"),
    ("flags", "I"), ("token", "I"),
    ("write_seq", "Q"), ("snd_una", "Q"), ("rcv_nxt", "Q"),
    ("local_addr_used", "B"), ("local_addr_max", "B"), ("csum_enabled", "B"), (None, "x"),
    ("retransmits", "I"),
    ("bytes_retrans", "Q"), ("bytes_sent", "Q"), ("bytes_received", "Q"), ("bytes_acked", "Q"),
    ("subflows_total", "B"), ("endp_laminar_max", "B"), ("endp_fullmesh_max", "B"), (None, "x"),
    ("last_data_sent", "I"), ("last_data_recv", "I"), ("last_ack_recv", "I"),
)
_MPTCP_INFO_FMT = "=" + "".join(f for _, f in _MPTCP_INFO_FIELDS)
_MPTCP_INFO_NAMES = [n for n, _ in _MPTCP_INFO_FIELDS if n]
MPTCP_INFO_SIZE = struct.calcsize(_MPTCP_INFO_FMT)  # 96
assert MPTCP_INFO_SIZE == 96

# struct tcp_info: the offsets used here (stable since Linux 4.x).
TCP_INFO_SIZE = 232
_TCPI = {"state": (0, "B"), "rtt_us": (68, "I"), "total_retrans": (100, "I"),
         "bytes_acked": (120, "Q"), "bytes_received": (128, "Q"),
         "notsent_bytes": (144, "I"), "bytes_sent": (200, "Q"), "bytes_retrans": (208, "Q")}
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1",
              5: "FIN_WAIT2", 6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK",
              10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"}

SUBFLOW_DATA_SIZE = 16          # struct mptcp_subflow_data (aligned 8)
SUBFLOW_ADDRS_SIZE = 256        # struct mptcp_subflow_addrs: 2 x sockaddr_storage
SUBFLOW_INFO_SIZE = 8 + 256     # struct mptcp_subflow_info: u32 id, (pad), addrs
FULL_INFO_HEAD = 40             # struct mptcp_full_info up to mptcp_info
MAX_SUBFLOWS = 16

_libc = ctypes.CDLL(None, use_errno=True)
_libc.getsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int,
                             ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]
_libc.getsockopt.restype = ctypes.c_int


def _errname(num: int | None) -> str:
    if num == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"   # errorcode[] says ENOTSUP, the same number on Linux
    return errno.errorcode.get(num, str(num))


def _getsockopt_buf(fd: int, level: int, opt: int, buf) -> int:
    """getsockopt with a caller-filled buffer (socket.getsockopt only passes zeros)."""
    optlen = ctypes.c_uint32(ctypes.sizeof(buf))
    if _libc.getsockopt(fd, level, opt, ctypes.addressof(buf), ctypes.byref(optlen)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return optlen.value


def _sockaddr(raw: bytes) -> tuple[str, int] | None:
    family = struct.unpack_from("=H", raw, 0)[0]
    if family == socket.AF_INET:
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if family == socket.AF_INET6:
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    return None


def _fmt(addr: tuple[str, int] | None) -> str | None:
    if addr is None:
        return None
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tcp_info(raw: bytes) -> dict:
    out = {}
    for name, (off, fmt) in _TCPI.items():
        if off + struct.calcsize(fmt) <= len(raw):
            out[name] = struct.unpack_from("=" + fmt, raw, off)[0]
    if "state" in out:
        out["state"] = TCP_STATES.get(out["state"], str(out["state"]))
    return out


def _subflow(sid, local, remote, tinfo: dict) -> dict:
    return {
        "id": sid,
        "local": _fmt(local), "remote": _fmt(remote),
        "local_addr": local[0] if local else None, "local_port": local[1] if local else None,
        "remote_addr": remote[0] if remote else None, "remote_port": remote[1] if remote else None,
        **tinfo,
    }


class Prober:
    """Reads MPTCP_INFO and the subflows of one socket."""

    def __init__(self, sock: socket.socket, method: str = "auto") -> None:
        self.sock = sock
        self.method = method          # auto | full | split
        self.source: str | None = None
        self.info_error: str | None = None
        self.subflows_error: str | None = None

    def mptcp_info(self) -> dict | None:
        try:
            raw = self.sock.getsockopt(SOL_MPTCP, MPTCP_INFO, MPTCP_INFO_SIZE)
        except OSError as exc:
            self.info_error = _errname(exc.errno)
            return None
        self.info_error = None
        raw = raw.ljust(MPTCP_INFO_SIZE, b"\0")  # older kernels return a shorter struct
        return dict(zip(_MPTCP_INFO_NAMES, struct.unpack(_MPTCP_INFO_FMT, raw)))

    def subflows(self) -> list[dict] | None:
        if self.method in ("auto", "full"):
            try:
                out = self._full()
                self.source = "full_info"
                self.subflows_error = None
                return out
            except OSError as exc:
                if self.method == "full" or exc.errno not in (
                        errno.EOPNOTSUPP, errno.ENOPROTOOPT, errno.EINVAL):
                    self.subflows_error = _errname(exc.errno)
                    return None
        try:
            out = self._split()
            self.source = "addrs+tcpinfo"
            self.subflows_error = None
            return out
        except OSError as exc:
            self.subflows_error = _errname(exc.errno)
            return None

    def _full(self) -> list[dict]:
        sfinfo = (ctypes.c_char * (SUBFLOW_INFO_SIZE * MAX_SUBFLOWS))()
        tcpinfo = (ctypes.c_char * (TCP_INFO_SIZE * MAX_SUBFLOWS))()
        buf = (ctypes.c_char * (FULL_INFO_HEAD + MPTCP_INFO_SIZE))()
        struct.pack_into("=IIIIIIQQ", buf, 0, 0, TCP_INFO_SIZE, 0, SUBFLOW_INFO_SIZE, 0,
                         MAX_SUBFLOWS, ctypes.addressof(sfinfo), ctypes.addressof(tcpinfo))
        _getsockopt_buf(self.sock.fileno(), SOL_MPTCP, MPTCP_FULL_INFO, buf)
        _, size_tcp, _, size_sf, num, _ = struct.unpack_from("=IIIIII", buf, 0)
        out = []
        for i in range(min(num, MAX_SUBFLOWS)):
            sf = bytes(sfinfo[i * size_sf:(i + 1) * size_sf])
            tc = bytes(tcpinfo[i * size_tcp:(i + 1) * size_tcp])
            sid = struct.unpack_from("=I", sf, 0)[0]
            out.append(_subflow(sid, _sockaddr(sf[8:136]), _sockaddr(sf[136:264]), _tcp_info(tc)))
        return out

    def _array(self, opt: int, elem: int) -> tuple[int, list[bytes]]:
        buf = (ctypes.c_char * (SUBFLOW_DATA_SIZE + elem * MAX_SUBFLOWS))()
        struct.pack_into("=IIII", buf, 0, SUBFLOW_DATA_SIZE, 0, 0, elem)
        _getsockopt_buf(self.sock.fileno(), SOL_MPTCP, opt, buf)
        size_sfd, num, _size_kernel, size_user = struct.unpack_from("=IIII", buf, 0)
        raw = bytes(buf)
        items = [raw[size_sfd + i * size_user:size_sfd + (i + 1) * size_user]
                 for i in range(min(num, MAX_SUBFLOWS))]
        return num, items

    def _split(self) -> list[dict]:
        for _ in range(5):  # a subflow may come or go between the two calls
            n1, addrs = self._array(MPTCP_SUBFLOW_ADDRS, SUBFLOW_ADDRS_SIZE)
            n2, infos = self._array(MPTCP_TCPINFO, TCP_INFO_SIZE)
            if n1 == n2:
                break
        out = []
        for i, a in enumerate(addrs):
            tinfo = _tcp_info(infos[i]) if i < len(infos) else {}
            out.append(_subflow(None, _sockaddr(a[0:128]), _sockaddr(a[128:256]), tinfo))
        return out


class Recorder:
    """Samples a connection while it is open and keeps what the report needs."""

    def __init__(self, sock: socket.socket, args, role: str, direction: str) -> None:
        self.sock = sock
        self.requested_mptcp = not args.tcp   # our socket (or listener) was IPPROTO_MPTCP
        self.args = args
        self.role = role
        self.direction = direction            # "send" or "recv": this process's data
        self.prober = Prober(sock, args.info_method)
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        self.bytes = 0
        self.samples = 0
        self.subflows_max_seen: int | None = None
        self.subflow_list_max_seen = 0
        self.info: dict | None = None
        self.current: list[dict] = []
        self.seen: dict[tuple, dict] = {}   # subflows by key()
        self.next_sample = 0.0
        self.next_report = 0.0
        self.next_status = 0.0
        self.phase = "connected"
        self.unacked: int | None = None
        self.protocol = _so_protocol(sock)

    @staticmethod
    def key(sf: dict):
        # The kernel's subflow id when MPTCP_FULL_INFO gives it, else the local
        # address and port (a closing subflow reports remote port 0: not a key).
        return ("id", sf["id"]) if sf.get("id") is not None else ("local", sf.get("local"))

    def sample(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self.next_sample:
            return
        self.next_sample = now + self.args.sample_interval
        self.samples += 1
        if self.direction == "send":
            self.unacked = unacked(self.sock)
        info = self.prober.mptcp_info()
        if info is not None:
            self.info = info
            n = info["subflows"]
            self.subflows_max_seen = n if self.subflows_max_seen is None \
                else max(self.subflows_max_seen, n)
        subs = self.prober.subflows() if self.protocol == IPPROTO_MPTCP else None
        if subs is not None:
            wall = round(time.time(), 3)
            self.current = subs
            self.subflow_list_max_seen = max(self.subflow_list_max_seen, len(subs))
            present = set()
            for sf in subs:
                k = self.key(sf)
                present.add(k)
                rec = self.seen.get(k)
                if rec is None:
                    rec = self.seen[k] = dict(sf, first_seen=wall, states_seen=[])
                keep_remote = not sf.get("remote_port") and rec.get("remote_port")
                rec.update({f: v for f, v in sf.items() if f not in (
                    "bytes_acked", "bytes_received", "bytes_sent", "bytes_retrans")
                    and not (keep_remote and f in ("remote", "remote_port"))})
                for f in ("bytes_acked", "bytes_received", "bytes_sent", "bytes_retrans"):
                    if f in sf:
                        rec[f] = max(rec.get(f, 0), sf[f])
                if sf.get("state") and sf["state"] not in rec["states_seen"]:
                    rec["states_seen"].append(sf["state"])
                rec["last_seen"] = wall
                rec["listed"] = True
            for k, rec in self.seen.items():
                if k not in present:
                    rec["listed"] = False
        if self.args.status_file and (force or now >= self.next_status):
            self.next_status = now + 0.1
            self.write_status()
        if self.args.rate_report and (force or now >= self.next_report):
            self.next_report = now + self.args.report_interval
            print(json.dumps({"event": "progress", "role": self.role, "t": self.elapsed(),
                              "bytes": self.bytes, "phase": self.phase,
                              "subflows": self.info["subflows"] if self.info else None,
                              "per_subflow": [
                                  {"local": s["local"], "remote": s["remote"],
                                   "state": s.get("state"),
                                   "bytes": s.get("bytes_acked" if self.direction == "send"
                                                  else "bytes_received")}
                                  for s in self.current]}),
                  file=sys.stderr, flush=True)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def status(self) -> dict:
        return {"role": self.role, "phase": self.phase, "pid": os.getpid(),
                "time": round(time.time(), 3), "t": self.elapsed(), "bytes": self.bytes,
                "mptcpi_subflows": self.info["subflows"] if self.info else None,
                "mptcpi_bytes_acked": self.info["bytes_acked"] if self.info else None,
                "mptcpi_bytes_received": self.info["bytes_received"] if self.info else None,
                "unacked": self.unacked,
                "subflows_max_seen": self.subflows_max_seen,
                "subflows": self.current}

    def write_status(self) -> None:
        path = self.args.status_file
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.status(), f)
            os.replace(tmp, path)
        except OSError:
            pass

    def report(self, *, ok: bool, error: str | None, complete: bool, seconds: float | None,
               expected: int | None, timed_out: bool = False) -> dict:
        info = self.info
        flags = info["flags"] if info else None
        is_mptcp_proto = self.protocol == IPPROTO_MPTCP
        mptcp = bool(is_mptcp_proto and info is not None
                     and not flags & MPTCP_INFO_FLAG_FALLBACK)
        # An MPTCP socket that fell back refuses MPTCP_INFO (or flags it); a listener's
        # accept() of a plain TCP client even hands out a TCP socket (protocol 6).
        fallback = self.requested_mptcp and not mptcp
        secs = seconds if seconds is not None else self.elapsed()
        try:
            local = _fmt(self.sock.getsockname()[:2])
            remote = _fmt(self.sock.getpeername()[:2])
        except OSError:
            local, remote = getattr(self, "local", None), getattr(self, "remote", None)
        return {
            "ok": ok, "error": error, "timed_out": timed_out,
            "role": self.role, "direction": self.direction,
            "local": local, "remote": remote,
            "bytes": self.bytes, "bytes_expected": expected, "complete": complete,
            "seconds": round(secs, 3),
            "mbit_per_s": round(self.bytes * 8 / secs / 1e6, 3) if secs > 0 else None,
            "protocol": self.protocol,
            "requested_mptcp": self.requested_mptcp,
            "mptcp": mptcp,
            "fallback": fallback,
            "mptcp_info_error": self.prober.info_error,
            "mptcpi_flags": flags,
            "subflows_max_seen": self.subflows_max_seen,
            "subflows_end": info["subflows"] if info else None,
            "subflow_list_max_seen": self.subflow_list_max_seen,
            "mptcp_info": info,
            "subflows": self.current,
            "subflows_seen": sorted(self.seen.values(), key=lambda r: r["first_seen"]),
            "subflow_source": self.prober.source,
            "subflows_error": self.prober.subflows_error,
            "samples": self.samples,
            "start_time": round(self.wall0, 3),
        }


def _so_protocol(sock: socket.socket) -> int | None:
    try:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)
    except OSError:
        return None


class Timeout(Exception):
    pass


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        rest = self.end - time.monotonic()
        if rest <= 0:
            raise Timeout(f"timeout after {self.seconds:g} s")
        return rest


_CHUNK = 64 * 1024
_PAYLOAD = memoryview(bytes(range(256)) * (_CHUNK // 256))


def _wait(sock, rec: Recorder, deadline: Deadline, *, read=False, write=False,
          until: float | None = None) -> bool:
    """select() for at most one sample interval; samples; True if ready."""
    limit = min(deadline.left(), rec.args.sample_interval)
    if until is not None:
        limit = min(limit, max(0.0, until - time.monotonic()))
    r, w, _ = select.select([sock] if read else [], [sock] if write else [], [], limit)
    rec.sample()
    return bool(r or w)


def _send_phase(sock, rec: Recorder, n: int, rate: float | None, deadline: Deadline) -> None:
    sent = 0
    start = time.monotonic()
    # A slow sender writes in quanta of 20 ms worth of data: tiny writes would make
    # tiny segments (twice the bytes on the wire, mostly headers).
    quantum = max(1, min(_CHUNK, int(rate * 0.02))) if rate else _CHUNK
    while sent < n:
        chunk = min(_CHUNK, n - sent)
        if rate:
            want = min(quantum, n - sent)
            allowed = int((time.monotonic() - start) * rate) - sent
            if allowed < want:
                _wait(sock, rec, deadline, until=start + (sent + want) / rate)
                continue
            chunk = min(chunk, allowed)
        if not _wait(sock, rec, deadline, write=True):
            continue
        try:
            k = sock.send(_PAYLOAD[:chunk])
        except BlockingIOError:
            continue
        sent += k
        rec.bytes = sent


def _recv_phase(sock, rec: Recorder, deadline: Deadline) -> bool:
    """Read until EOF (True), or until the deadline (Timeout)."""
    buf = bytearray(_CHUNK)
    while True:
        if not _wait(sock, rec, deadline, read=True):
            continue
        try:
            k = sock.recv_into(buf)
        except BlockingIOError:
            continue
        if k == 0:
            return True
        rec.bytes += k


def unacked(sock) -> int | None:
    """Bytes written but not yet acknowledged (SIOCOUTQ; for an MPTCP socket at
    the MPTCP level: write_seq - snd_una)."""
    buf = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf, True)
    except OSError:
        return None
    return buf[0]


def _wait_acked(sock, rec: Recorder, deadline: Deadline) -> None:
    while True:
        left = unacked(sock)
        if not left:   # 0, or None: the kernel cannot tell
            rec.sample(force=True)
            return
        _wait(sock, rec, deadline, until=time.monotonic() + 0.01)


def _hold(sock, rec: Recorder, seconds: float, deadline: Deadline) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _wait(sock, rec, deadline, until=end)


def _drain_until_eof(sock, rec: Recorder, deadline: Deadline) -> int:
    """After our shutdown(SHUT_WR): wait for the peer's EOF; bytes that came meanwhile."""
    buf = bytearray(_CHUNK)
    extra = 0
    while True:
        if not _wait(sock, rec, deadline, read=True):
            continue
        try:
            k = sock.recv_into(buf)
        except BlockingIOError:
            continue
        if k == 0:      # (a reset raises: the peer did not take everything)
            return extra
        extra += k


def run_connection(sock: socket.socket, args, role: str, direction: str,
                   nbytes: int | None, deadline: Deadline) -> dict:
    """The data phase of one connected socket, then a clean close; returns the report."""
    rec = Recorder(sock, args, role, direction)
    sock.setblocking(False)
    rec.sample(force=True)
    t_start = time.monotonic()
    seconds = None
    complete = False
    try:
        if direction == "send":
            rec.phase = "sending"
            _send_phase(sock, rec, nbytes or 0, args.rate, deadline)
            rec.phase = "draining"
            _wait_acked(sock, rec, deadline)      # every byte acked at the MPTCP level
            seconds = time.monotonic() - t_start
            rec.phase = "holding"
            _hold(sock, rec, args.hold, deadline)
            rec.sample(force=True)   # the end state, while the connection is fully open
            rec.phase = "closing"
            sock.shutdown(socket.SHUT_WR)
            _drain_until_eof(sock, rec, deadline)   # the peer read everything, then closed
            complete = True
        else:
            rec.phase = "receiving"
            got_eof = _recv_phase(sock, rec, deadline)
            seconds = time.monotonic() - t_start
            rec.sample(force=True)
            rec.phase = "holding"
            _hold(sock, rec, args.hold, deadline)
            complete = got_eof and (nbytes is None or rec.bytes == nbytes)
            rec.phase = "closing"
        rec.phase = "done"
        error = None if complete else f"received {rec.bytes} of {nbytes} bytes"
        out = rec.report(ok=complete, error=error, complete=complete, seconds=seconds,
                         expected=nbytes)
    except Timeout as exc:
        rec.phase = "timeout"
        out = rec.report(ok=False, error=str(exc), complete=False, seconds=None,
                         expected=nbytes, timed_out=True)
    except OSError as exc:
        rec.phase = "error"
        out = rec.report(ok=False, error=f"{type(exc).__name__}: {exc}", complete=False,
                         seconds=None, expected=nbytes)
    finally:
        if args.status_file:
            rec.write_status()
        sock.close()
    return out


def _family(addr: str) -> int:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def _new_socket(family: int, tcp: bool) -> socket.socket:
    return socket.socket(family, socket.SOCK_STREAM, 0 if tcp else IPPROTO_MPTCP)


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def _error(role: str, msg: str, **extra) -> dict:
    return {"ok": False, "error": msg, "role": role, "bytes": 0, "complete": False,
            "mptcp": False, "timed_out": extra.pop("timed_out", False), **extra}


def cmd_client(args) -> int:
    deadline = Deadline(args.timeout)
    role = args.cmd
    try:
        sock = _new_socket(_family(args.to), args.tcp)
    except OSError as exc:
        _emit(_error(role, f"socket: {exc}"))
        return 1
    try:
        if args.local:
            sock.bind((args.local, 0))
        sock.settimeout(deadline.left())
        sock.connect((args.to, args.port))
    except Timeout as exc:
        sock.close()
        _emit(_error(role, f"connect: {exc}", timed_out=True))
        return 1
    except OSError as exc:
        sock.close()
        timed = isinstance(exc, TimeoutError)
        _emit(_error(role, f"connect: {exc}", timed_out=timed))
        return 1
    direction = "send" if role == "send" else "recv"
    out = run_connection(sock, args, role, direction, args.bytes, deadline)
    _emit(out)
    return 0 if out["ok"] else 1


def cmd_serve(args) -> int:
    deadline = Deadline(args.timeout)
    bind = args.bind
    try:
        ls = _new_socket(_family(bind), args.tcp)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((bind, args.port))
        ls.listen(8)
    except OSError as exc:
        _emit(_error("serve", f"listen: {exc}"))
        return 1
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"pid": os.getpid(), "port": ls.getsockname()[1], "bind": bind}, f)
        os.replace(args.ready_file + ".tmp", args.ready_file)
    status = 0
    served = 0
    try:
        while True:
            try:
                ls.settimeout(deadline.left())
                conn, _ = ls.accept()
            except Timeout as exc:
                if served == 0 or args.once:
                    _emit(_error("serve", f"accept: {exc}", timed_out=True))
                    status = 1
                break
            except TimeoutError:
                if served == 0 or args.once:
                    _emit(_error("serve", f"accept: timeout after {args.timeout:g} s",
                                 timed_out=True))
                    status = 1
                break
            served += 1
            if args.send is not None:
                out = run_connection(conn, args, "serve", "send", args.send, deadline)
            else:
                out = run_connection(conn, args, "serve", "recv", args.bytes, deadline)
            _emit(out)
            if not out["ok"]:
                status = 1
            if args.once:
                break
    finally:
        ls.close()
    return status


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mptcp_peer.py",
                                 description="MPTCP traffic with the kernel's view of it.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--timeout", type=float, default=30.0,
                       help="seconds for the whole run (default 30): then an error JSON")
        p.add_argument("--rate", type=float, default=None, metavar="BYTES_PER_SEC",
                       help="send at most this many bytes per second")
        p.add_argument("--hold", type=float, default=0.0, metavar="SEC",
                       help="keep the connection open SEC seconds after the data phase")
        p.add_argument("--sample-interval", type=float, default=0.05, metavar="SEC")
        p.add_argument("--status-file", metavar="PATH",
                       help="rewrite the latest sample (JSON) here while the connection lives")
        p.add_argument("--rate-report", action="store_true",
                       help="progress lines (JSON) on stderr")
        p.add_argument("--report-interval", type=float, default=0.5, metavar="SEC")
        p.add_argument("--tcp", action="store_true", help="a plain TCP socket, not MPTCP")
        p.add_argument("--info-method", choices=("auto", "full", "split"), default="auto",
                       help="subflow list from MPTCP_FULL_INFO (full), MPTCP_SUBFLOW_ADDRS + "
                            "MPTCP_TCPINFO (split), or full falling back to split (auto)")

    p = sub.add_parser("serve", help="listen, serve one connection (--once) or several")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bind", default="0.0.0.0",
                   help="listen address (default 0.0.0.0: joins to every address are accepted)")
    p.add_argument("--once", action="store_true", help="exit after the first connection")
    p.add_argument("--send", type=int, default=None, metavar="N",
                   help="send N bytes to each client (default: read until EOF)")
    p.add_argument("--bytes", type=int, default=None, metavar="N",
                   help="when reading: the number of bytes expected (checked)")
    p.add_argument("--ready-file", metavar="PATH", help="written once the socket listens")
    common(p)

    for name in ("send", "recv"):
        p = sub.add_parser(name, help=f"connect, {name} the data, report")
        p.add_argument("--to", required=True, metavar="ADDR")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--bytes", type=int, required=(name == "send"), default=None,
                       metavar="N", help="bytes to send" if name == "send"
                       else "bytes expected (checked)")
        p.add_argument("--local", metavar="ADDR", help="bind the first subflow to this address")
        common(p)
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "serve":
        return cmd_serve(args)
    return cmd_client(args)


if __name__ == "__main__":
    sys.exit(main())
