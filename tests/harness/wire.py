"""wire: a two-path MPTCP test bed in sandbox namespaces, and traffic through it.

    client (sandbox netns)                      server (peer netns)
    eth1 10.1.1.2/24  ==== path 1 (veth) ====  eth1 10.1.1.1/24
    eth2 10.2.2.2/24  ==== path 2 (veth) ====  eth2 10.2.2.1/24

Two subnets, one per path.  Both namespaces answer ARP only for addresses on the
link asked (arp_ignore=1, arp_announce=2) and have rp_filter off, so a subflow
bound to one link cannot quietly run to the other link's address.  Each path is
rate-limited by a tbf qdisc on both ends (both directions).  The bed does *not*
configure MPTCP (endpoints, limits): the tests do, through a callable or a shell
snippet run in the right namespace.

Traffic is made by mptcp_peer.py (beside this file), run in the namespaces; its
JSON reports come back parsed.  Everything lives in a nmsandbox.Sandbox and goes
away with its stop(), also on failure; every wait is bounded.

    from wire import WireBed
    with WireBed() as bed:
        bed.server_sh("ip mptcp endpoint add 10.2.2.1 dev eth2 signal")
        bed.client_sh("ip mptcp limits set add_addr_accepted 1 subflows 2")
        r = bed.transfer(4_000_000)
        print(r["split"], r["client"]["subflows_max_seen"])

Python 3.11 standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from nmsandbox import (Sandbox, SandboxError, _normalize_endpoint,  # noqa: E402
                       parse_endpoints_text, wait_for)

PEER = os.path.join(HERE, "mptcp_peer.py")

PATHS = ("eth1", "eth2")
CLIENT_ADDRS = {"eth1": "10.1.1.2", "eth2": "10.2.2.2"}
SERVER_ADDRS = {"eth1": "10.1.1.1", "eth2": "10.2.2.1"}
PREFIXLEN = 24

# Classic BPF, one instruction: `ret #2`; with `da` that is TC_ACT_SHOT (drop).
DROP_ALL_BPF = "1,6 0 0 2"

# Endpoint flag bits of the kernel that iproute2 6.1 prints as `rawflags`.
_RAW_FLAGS = {0x1: "signal", 0x2: "subflow", 0x4: "backup", 0x8: "fullmesh",
              0x10: "implicit", 0x20: "laminar"}


class WireError(SandboxError):
    """The bed could not be built, or a tool in it failed."""


def _pdeathsig() -> None:
    """In a child before exec: die with the parent (ip netns exec keeps this over exec)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _parse_json_lines(text: str) -> list[dict]:
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


class PeerProcess:
    """One mptcp_peer.py run in a namespace (server or client)."""

    def __init__(self, bed: "WireBed", side: str, argv: list[str], status_file: str | None,
                 timeout: float) -> None:
        self.bed = bed
        self.side = side
        self.argv = argv
        self.status_file = status_file
        self.timeout = timeout
        ns = bed.sb.netns if side == "client" else bed.sb.peer_netns
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, PEER] + argv,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True,
                                     preexec_fn=_pdeathsig)
        self.pid = self.proc.pid
        self.stdout = ""
        self.stderr = ""
        self.returncode: int | None = None
        self.reports: list[dict] | None = None

    def status(self) -> dict | None:
        """The latest sample the peer wrote (None before its first one)."""
        if not self.status_file:
            return None
        try:
            with open(self.status_file, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def wait_status(self, predicate: Callable[[dict], Any], timeout: float = 10.0,
                    what: str | None = None) -> dict:
        """Poll status() until predicate(status) is truthy; returns that status."""
        def check():
            if self.proc.poll() is not None:
                raise WireError(f"{self.side} exited ({self.proc.returncode}) before: "
                                f"{what or 'condition'}")
            st = self.status()
            return st if st is not None and predicate(st) else None
        try:
            return wait_for(check, timeout=timeout, interval=0.05, what=what)
        except WireError:
            raise
        except TimeoutError:
            if self.proc.poll() is not None:
                self.wait(timeout=1)
                raise WireError(f"{self.side} exited early: {self.stdout} {self.stderr}")
            raise

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> list[dict]:
        """Wait for the peer to exit (bounded: its own --timeout + 5 s by default);
        the JSON reports it printed."""
        if self.reports is not None:
            return self.reports
        limit = timeout if timeout is not None else self.timeout + 5
        try:
            out, err = self.proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.proc.communicate(timeout=5)
            err = (err or "") + f"\n(wire: killed after {limit:g} s)"
        self.stdout, self.stderr = out or "", err or ""
        self.returncode = self.proc.returncode
        self.reports = _parse_json_lines(self.stdout)
        return self.reports

    def result(self, timeout: float | None = None) -> dict:
        """The last JSON report (an error object if the peer printed none)."""
        reports = self.wait(timeout)
        if reports:
            return reports[-1]
        return {"ok": False, "error": f"no report (exit {self.returncode}): "
                                      f"{self.stderr.strip()[-2000:]}",
                "role": self.side, "bytes": 0, "complete": False, "mptcp": False}

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)


class WireBed:
    """Two paths between a client (the sandbox netns) and a server (the peer netns).

    WireBed(nm=False, rate="20mbit", burst="32kb", latency="100ms", client_ip=None,
            ipv6=False)
      * rate=None: no tbf;  client_ip=None means "configure the client's addresses
        unless NetworkManager runs" (with nm=True the test gives NM profiles
        CLIENT_ADDRS[...]/24 itself); ipv6=False disables IPv6 on the test links
        (no router solicitations or MLD in the byte counters).
    """

    paths = PATHS
    client_addrs = CLIENT_ADDRS
    server_addrs = SERVER_ADDRS

    def __init__(self, *, nm: bool = False, rate: str | None = "20mbit", burst: str = "32kb",
                 latency: str = "100ms", client_ip: bool | None = None, ipv6: bool = False,
                 sandbox_kw: dict | None = None) -> None:
        self.nm = nm
        self.rate = rate
        self.burst = burst
        self.latency = latency
        self.client_ip = (not nm) if client_ip is None else client_ip
        self.ipv6 = ipv6
        self.sb = Sandbox(list(PATHS), nm=nm, **(sandbox_kw or {}))
        self._procs: list[PeerProcess] = []
        self._next_port = 5201
        self._seq = 0
        self.cut_state: dict[str, set] = {p: set() for p in PATHS}

    # ---- lifecycle -------------------------------------------------------------
    def __enter__(self) -> "WireBed":
        if not self.sb.state:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> "WireBed":
        self.sb.start()
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill the peers we started (by PID), then the sandbox (idempotent)."""
        for p in self._procs:
            p.kill()
        for p in self._procs:
            with contextlib.suppress(Exception):
                p.proc.wait(timeout=2)
            with contextlib.suppress(Exception):
                if p.proc.stdout:
                    p.proc.stdout.close()
                if p.proc.stderr:
                    p.proc.stderr.close()
        self.sb.stop()

    def _sysctls(self) -> list[str]:
        kv = []
        for dev in ("all", "default") + PATHS:
            kv += [f"net.ipv4.conf.{dev}.arp_ignore=1", f"net.ipv4.conf.{dev}.arp_announce=2",
                   f"net.ipv4.conf.{dev}.rp_filter=0"]
            if not self.ipv6 and dev in PATHS:
                kv.append(f"net.ipv6.conf.{dev}.disable_ipv6=1")
        return kv

    def _build(self) -> None:
        kv = self._sysctls()
        for side in ("client", "server"):
            self.sh(side, "sysctl -q -w " + " ".join(kv))
        batch_srv = "".join(f"addr add {SERVER_ADDRS[p]}/{PREFIXLEN} dev {p}\n" for p in PATHS)
        self._ip_batch("server", batch_srv)
        if self.client_ip:
            batch_cli = "".join(f"addr add {CLIENT_ADDRS[p]}/{PREFIXLEN} dev {p}\n"
                                for p in PATHS)
            self._ip_batch("client", batch_cli)
        if self.rate:
            for side in ("client", "server"):
                for p in PATHS:
                    self.sh(side, f"tc qdisc replace dev {p} root tbf rate {self.rate} "
                                  f"burst {self.burst} latency {self.latency}")
        # Carrier on both ends before anyone uses the links.
        for side in ("client", "server"):
            for p in PATHS:
                wait_for(lambda: "LOWER_UP" in self.link(side, p)["flags"], timeout=10,
                         what=f"{side} {p} LOWER_UP")

    def _ip_batch(self, side: str, batch: str) -> None:
        ns = self._ns(side)
        proc = subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch, text=True,
                              capture_output=True, timeout=30)
        if proc.returncode != 0:
            raise WireError(f"ip -batch in {side}: {proc.stderr.strip()}")

    # ---- namespaces and commands -----------------------------------------------
    def _ns(self, side: str) -> str:
        if side == "client":
            return self.sb.netns
        if side == "server":
            return self.sb.peer_netns
        raise ValueError(f"side must be 'client' or 'server', not {side!r}")

    @staticmethod
    def path(p: int | str) -> str:
        """1, 2, 'eth1', 'eth2' -> the link name."""
        name = f"eth{p}" if isinstance(p, int) else p
        if name not in PATHS:
            raise ValueError(f"no such path: {p!r}")
        return name

    def client_addr(self, p: int | str) -> str:
        return CLIENT_ADDRS[self.path(p)]

    def server_addr(self, p: int | str) -> str:
        return SERVER_ADDRS[self.path(p)]

    def sh(self, side: str, cmd: str | list[str], *, check: bool = True,
           timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a shell snippet (or argv) in the client or server namespace."""
        run = self.sb.run if side == "client" else self.sb.peer_run
        return run(cmd, check=check, timeout=timeout)

    def client_sh(self, cmd: str | list[str], **kw) -> subprocess.CompletedProcess:
        return self.sh("client", cmd, **kw)

    def server_sh(self, cmd: str | list[str], **kw) -> subprocess.CompletedProcess:
        return self.sh("server", cmd, **kw)

    def configure(self, side: str, action: str | list[str] | Callable[..., Any]) -> Any:
        """Apply MPTCP (or any) configuration: a shell snippet / argv run in that
        side's namespace, or a callable called as action(bed) (e.g. the project's
        library run through bed.sb)."""
        if callable(action):
            return action(self)
        return self.sh(side, action)

    def configure_client(self, action) -> Any:
        return self.configure("client", action)

    def configure_server(self, action) -> Any:
        return self.configure("server", action)

    def ip(self, side: str, *args: str, json: bool = False, check: bool = True):
        f = self.sb.ip if side == "client" else self.sb.peer_ip
        return f(*args, json=json, check=check)

    def endpoints(self, side: str = "client") -> list[dict]:
        """`ip mptcp endpoint show` of a side, normalised like Sandbox.endpoints();
        `rawflags` (flags iproute2 6.1 has no name for, e.g. implicit=0x10) decoded
        into "flags" as well; "raw" keeps the text line."""
        text = self.ip(side, "mptcp", "endpoint", "show")
        out = []
        for line, ep in zip([l for l in text.splitlines() if l.strip()],
                            parse_endpoints_text(text)):
            flags = []
            words = ep.get("flags", [])
            i = 0
            while i < len(words):
                if words[i] == "rawflags" and i + 1 < len(words):
                    bits = int(words[i + 1], 16)
                    flags += [n for b, n in _RAW_FLAGS.items() if bits & b]
                    ep["rawflags"] = bits
                    i += 2
                    continue
                flags.append(words[i])
                i += 1
            ep["flags"] = sorted(set(flags))
            e = _normalize_endpoint(ep)
            e["raw"] = line.strip()
            out.append(e)
        return out

    def limits(self, side: str = "client") -> dict:
        text = self.ip(side, "mptcp", "limits", "show").strip()
        words = text.split()
        return {k: int(v) for k, v in zip(words[0::2], words[1::2])}

    def subflow_flags(self, side: str = "client") -> list[dict]:
        """The side's MPTCP subflows as `ss -tni` shows them (inet_diag's ULP info):
        [{"state", "local", "remote", "dev", "flags" (ss letters, e.g. "Jjbec"),
          "backup_local" (b: we asked for backup), "backup_remote" (B: the peer did),
          "local_id", "remote_id", "local_token", "remote_token"}].
        Letters: M/m MP_CAPABLE remote/local, J/j MP_JOIN remote/local, B/b backup
        remote/local, e fully established, c connected, v mapping valid."""
        text = self.sh(side, ["ss", "-tniH"]).stdout
        out: list[dict] = []
        head: list[str] | None = None
        for line in text.splitlines():
            if not line.strip():
                continue
            if not line[0].isspace():
                head = line.split()
                continue
            if head is None or "tcp-ulp-mptcp" not in line:
                continue
            local, _, dev = head[3].partition("%")
            remote = head[4]
            rec: dict[str, Any] = {"state": head[0], "local": local, "remote": remote,
                                   "dev": dev or None}
            for word in line.split():
                if word.startswith("flags:"):
                    rec["flags"] = word[6:]
                elif word.startswith("token:"):
                    # token:<remote token>(id:<remote id>)/<local token>(id:<local id>)
                    rem, _, loc = word[6:].partition("/")
                    for tag, part in (("remote", rem), ("local", loc)):
                        tok, _, rid = part.partition("(id:")
                        rec[f"{tag}_token"] = tok
                        with contextlib.suppress(ValueError):
                            rec[f"{tag}_id"] = int(rid.rstrip(")"))
            flags = rec.setdefault("flags", "")
            rec["backup_local"] = "b" in flags
            rec["backup_remote"] = "B" in flags
            out.append(rec)
        return out

    def link(self, side: str, p: int | str) -> dict:
        return self.ip(side, "link", "show", "dev", self.path(p), json=True)[0]

    # ---- counters --------------------------------------------------------------
    def counters(self, side: str = "client") -> dict[str, dict[str, int]]:
        """{"eth1": {"rx_bytes", "tx_bytes", "rx_packets", "tx_packets"}, "eth2": ...}
        of one side, from `ip -j -s link show`."""
        out = {}
        for link in self.ip(side, "-s", "link", "show", json=True):
            name = link.get("ifname")
            if name not in PATHS:
                continue
            st = link.get("stats64") or link.get("stats") or {}
            out[name] = {"rx_bytes": st["rx"]["bytes"], "tx_bytes": st["tx"]["bytes"],
                         "rx_packets": st["rx"]["packets"], "tx_packets": st["tx"]["packets"]}
        return out

    @staticmethod
    def delta(before: dict, after: dict) -> dict[str, dict[str, int]]:
        return {p: {k: after[p][k] - before[p][k] for k in after[p]} for p in after}

    @staticmethod
    def split(delta: dict, key: str) -> dict[str, float]:
        """Share of each path in delta[path][key] (0.0 each if nothing moved)."""
        total = sum(d[key] for d in delta.values())
        return {p: (round(d[key] / total, 4) if total else 0.0) for p, d in delta.items()}

    # ---- cutting paths ---------------------------------------------------------
    def _sides(self, side: str) -> tuple[str, ...]:
        return ("client", "server") if side == "both" else (side,)

    def drop(self, p: int | str, side: str = "both") -> None:
        """Cut a path: a cls_bpf filter drops every packet in and out of the link
        (on the client's end, the server's, or both).  The link stays up."""
        name = self.path(p)
        for s in self._sides(side):
            self.sh(s, f"tc qdisc replace dev {name} clsact && "
                       f"tc filter replace dev {name} ingress prio 1 handle 1 "
                       f"bpf da bytecode '{DROP_ALL_BPF}' && "
                       f"tc filter replace dev {name} egress prio 1 handle 1 "
                       f"bpf da bytecode '{DROP_ALL_BPF}'")
            self.cut_state[name].add(f"drop:{s}")

    def undrop(self, p: int | str, side: str = "both") -> None:
        name = self.path(p)
        for s in self._sides(side):
            self.sh(s, f"tc qdisc del dev {name} clsact", check=False)
            self.cut_state[name].discard(f"drop:{s}")

    def link_down(self, p: int | str, side: str = "client") -> None:
        """Cut a path by setting the link down (the other end loses its carrier)."""
        name = self.path(p)
        for s in self._sides(side):
            self.ip(s, "link", "set", name, "down")
            self.cut_state[name].add(f"down:{s}")

    def link_up(self, p: int | str, side: str = "both", wait: float = 10.0) -> None:
        name = self.path(p)
        for s in self._sides(side):
            self.ip(s, "link", "set", name, "up")
            self.cut_state[name].discard(f"down:{s}")
        for s in ("client", "server"):
            wait_for(lambda: "LOWER_UP" in self.link(s, name)["flags"], timeout=wait,
                     what=f"{s} {name} LOWER_UP")

    def cut(self, p: int | str, how: str = "drop", side: str | None = None) -> None:
        """how="drop" (default side: both ends) or how="down" (default: the client's end)."""
        if how == "drop":
            self.drop(p, side or "both")
        elif how == "down":
            self.link_down(p, side or "client")
        else:
            raise ValueError(f"how must be 'drop' or 'down', not {how!r}")

    def restore(self, p: int | str) -> None:
        """Undo every cut of a path (filters removed, links up)."""
        name = self.path(p)
        self.undrop(name, "both")
        if any(c.startswith("down:") for c in self.cut_state[name]) or \
                any("UP" not in self.link(s, name)["flags"] for s in ("client", "server")):
            self.link_up(name, "both")

    # ---- traffic ---------------------------------------------------------------
    def new_port(self) -> int:
        port = self._next_port
        self._next_port += 1
        return port

    def _file(self, what: str) -> str:
        self._seq += 1
        return os.path.join(self.sb.dir, f"wire-{self._seq}-{what}.json")

    @staticmethod
    def _opts(*, timeout: float, rate: float | None, hold: float, sample_interval: float | None,
              rate_report: bool, tcp: bool, info_method: str | None,
              extra: list[str] | tuple[str, ...]) -> list[str]:
        argv = ["--timeout", f"{timeout:g}", "--hold", f"{hold:g}"]
        if rate:
            argv += ["--rate", f"{rate:g}"]
        if sample_interval:
            argv += ["--sample-interval", f"{sample_interval:g}"]
        if rate_report:
            argv.append("--rate-report")
        if tcp:
            argv.append("--tcp")
        if info_method:
            argv += ["--info-method", info_method]
        return argv + list(extra)

    def serve(self, port: int | None = None, *, bind: str = "0.0.0.0", once: bool = True,
              send: int | None = None, expect: int | None = None, timeout: float = 30.0,
              rate: float | None = None, hold: float = 0.0, sample_interval: float | None = None,
              rate_report: bool = False, tcp: bool = False, info_method: str | None = None,
              extra: list[str] | tuple[str, ...] = (), ready_timeout: float = 10.0) -> PeerProcess:
        """Start `mptcp_peer.py serve` in the server namespace; returns once it listens."""
        port = port or self.new_port()
        ready = self._file("ready")
        status = self._file("server-status")
        argv = ["serve", "--port", str(port), "--bind", bind, "--ready-file", ready,
                "--status-file", status]
        if once:
            argv.append("--once")
        if send is not None:
            argv += ["--send", str(send)]
        if expect is not None:
            argv += ["--bytes", str(expect)]
        argv += self._opts(timeout=timeout, rate=rate, hold=hold, sample_interval=sample_interval,
                           rate_report=rate_report, tcp=tcp, info_method=info_method,
                           extra=extra)
        proc = PeerProcess(self, "server", argv, status, timeout)
        proc.port = port
        self._procs.append(proc)

        def listening():
            if proc.proc.poll() is not None:
                proc.wait(timeout=1)
                raise WireError(f"server exited at once ({proc.returncode}): "
                                f"{proc.stdout.strip()} {proc.stderr.strip()}")
            return os.path.exists(ready)
        try:
            wait_for(listening, timeout=ready_timeout, interval=0.02, what="server listening")
        except TimeoutError:
            proc.kill()
            raise
        except WireError:
            raise
        return proc

    def start_client(self, cmd: str = "send", *, to: str | None = None, port: int,
                     nbytes: int | None = None, local: str | None = None, timeout: float = 30.0,
                     rate: float | None = None, hold: float = 0.0,
                     sample_interval: float | None = None, rate_report: bool = False,
                     tcp: bool = False, info_method: str | None = None,
                     extra: list[str] | tuple[str, ...] = ()) -> PeerProcess:
        """Start `mptcp_peer.py send|recv` in the client namespace (to: default the
        server's path-1 address); returns at once.  .status() gives live samples."""
        if cmd not in ("send", "recv"):
            raise ValueError("cmd must be 'send' or 'recv'")
        to = to or SERVER_ADDRS["eth1"]
        status = self._file("client-status")
        argv = [cmd, "--to", to, "--port", str(port), "--status-file", status]
        if nbytes is not None:
            argv += ["--bytes", str(nbytes)]
        if local:
            argv += ["--local", local]
        argv += self._opts(timeout=timeout, rate=rate, hold=hold, sample_interval=sample_interval,
                           rate_report=rate_report, tcp=tcp, info_method=info_method,
                           extra=extra)
        proc = PeerProcess(self, "client", argv, status, timeout)
        self._procs.append(proc)
        return proc

    def client(self, cmd: str = "send", **kw) -> dict:
        """start_client(...) and wait: the client's JSON report."""
        return self.start_client(cmd, **kw).result()

    def transfer(self, nbytes: int, *, direction: str = "send", to: str | None = None,
                 rate: float | None = None, hold: float = 0.0, timeout: float = 30.0,
                 during: Callable[[PeerProcess], Any] | None = None,
                 server_kw: dict | None = None, client_kw: dict | None = None) -> dict:
        """Move nbytes from the client to the server (direction="send", the default)
        or back ("recv"); `rate`/`hold` apply to the sending side.  `during(client)`
        is called while the transfer runs (cut a path, change the configuration...);
        the transfer is then awaited.  Returns:
            {"client": report, "server": report, "port", "seconds",
             "counters": {path: deltas of the client's links},
             "server_counters": {path: deltas of the server's links},
             "data_bytes": {path: bytes in the data's direction on the client's links
                             (tx for send, rx for recv)},
             "split": {path: share of data_bytes}, "during": during's return value}"""
        server_kw = dict(server_kw or {})
        client_kw = dict(client_kw or {})
        sender_opts = {"rate": rate, "hold": hold}
        if direction == "send":
            server_kw.setdefault("expect", nbytes)
            client_kw.update({k: v for k, v in sender_opts.items() if k not in client_kw})
        elif direction == "recv":
            server_kw["send"] = nbytes
            server_kw.update({k: v for k, v in sender_opts.items() if k not in server_kw})
        else:
            raise ValueError("direction must be 'send' or 'recv'")
        before_c, before_s = self.counters("client"), self.counters("server")
        t0 = time.monotonic()
        server_kw.setdefault("timeout", timeout)
        client_kw.setdefault("timeout", timeout)
        server = self.serve(**server_kw)
        client = self.start_client(direction, to=to, port=server.port, nbytes=nbytes,
                                   **client_kw)
        during_value = None
        try:
            if during is not None:
                during_value = during(client)
        except BaseException:
            client.kill()
            server.kill()
            client.wait(timeout=5)
            server.wait(timeout=5)
            raise
        c = client.result()
        s = server.result(timeout=10 if c.get("ok") else 5)
        seconds = round(time.monotonic() - t0, 3)
        dc = self.delta(before_c, self.counters("client"))
        ds = self.delta(before_s, self.counters("server"))
        key = "tx_bytes" if direction == "send" else "rx_bytes"
        return {"client": c, "server": s, "port": server.port, "seconds": seconds,
                "counters": dc, "server_counters": ds,
                "data_bytes": {p: d[key] for p, d in dc.items()},
                "split": self.split(dc, key), "during": during_value}
