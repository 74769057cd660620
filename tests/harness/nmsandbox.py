#!/usr/bin/env python3
"""nmsandbox: a real NetworkManager in private network namespaces, for tests.

A sandbox is:
  * a network namespace ``<name>-sbx`` (NetworkManager runs here, the test links
    live here, and the code under test runs here) and a peer namespace
    ``<name>-peer`` that holds the other end of every veth pair, ``lo`` up in both;
  * a private D-Bus system bus (``dbus-daemon``) listening on
    ``<dir>/system_bus_socket``; clients find it through DBUS_SYSTEM_BUS_ADDRESS;
  * ``NetworkManager --debug`` inside the sandbox namespace and a private mount
    namespace (read-only /sys, tmpfs /run, private NM dirs), keyfile profiles in
    ``<dir>/system-connections``;
  * a detached supervisor process that tears everything down when the owner
    process dies (even by SIGKILL).

Nothing ever runs in, or is added to, the root network namespace.  Every name
starts with ``mps-`` followed by 8 hex digits, and teardown only touches the
namespaces and the processes (checked by PID *and* start time) that the
sandbox's state file records.

Python 3.11 standard library only.  Usable as a module (``Sandbox``) and as a
CLI (``python3 nmsandbox.py start --json`` ...); see README.md beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json as _json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "ROOT",
    "Sandbox",
    "SandboxError",
    "SandboxCommandError",
    "SandboxTimeout",
    "list_sandboxes",
    "stop_sandbox",
    "sweep",
]

#: Directory holding one sub-directory (and state file) per sandbox.
ROOT = os.environ.get("NMSANDBOX_ROOT", "/tmp/mptcpstate-sandboxes")
PREFIX = "mps-"
NAME_RE = re.compile(r"^mps-[0-9a-f]{8}$")
NETNS_RE = re.compile(r"^(mps-[0-9a-f]{8})-(sbx|peer)$")

DBUS_SYSTEM_CONF = "/usr/share/dbus-1/system.conf"
NM_DBUS_POLICY = "/usr/share/dbus-1/system.d/org.freedesktop.NetworkManager.conf"
NM_BIN = "NetworkManager"
DBUS_BIN = "dbus-daemon"

DEFAULT_TIMEOUT = 30.0
KILL_GRACE = 5.0
NM_KILL_GRACE = 2.0
SUPERVISOR_INTERVAL = 0.25

# Interface names: 1..15 bytes, no '/', ':' or whitespace (what the kernel takes).
_IFNAME_RE = re.compile(r"^[^/:\s]{1,15}$")


class SandboxError(RuntimeError):
    """A sandbox could not be built, found or used."""


class SandboxTimeout(SandboxError, TimeoutError):
    """wait_for() or start() ran out of time."""


class SandboxCommandError(subprocess.CalledProcessError):
    """CalledProcessError whose message includes the command's output."""

    def __str__(self) -> str:
        text = super().__str__()
        for label, data in (("stdout", self.stdout), ("stderr", self.stderr)):
            if data:
                if isinstance(data, bytes):
                    data = data.decode(errors="replace")
                text += f"\n--- {label} ---\n{data.rstrip()}"
        return text


# --------------------------------------------------------------------------
# small process helpers
# --------------------------------------------------------------------------

def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of pid, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rfind(")") + 2:].split()
    try:
        return rest[0], int(rest[19])
    except (IndexError, ValueError):
        return None


def _proc_record(pid: int) -> dict[str, int]:
    st = _proc_stat(pid)
    if st is None:
        raise SandboxError(f"process {pid} does not exist")
    return {"pid": pid, "start": st[1]}


def _alive(rec: dict | None) -> bool:
    """True if the recorded process still runs (same PID *and* start time, not a zombie)."""
    if not rec or not rec.get("pid"):
        return False
    st = _proc_stat(int(rec["pid"]))
    if st is None:
        return False
    state, start = st
    if rec.get("start") is not None and start != rec["start"]:
        return False  # PID reused by another process
    return state not in ("Z", "X", "x")


def _reap(pid: int) -> None:
    """Reap pid if it is our child (no-op otherwise)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _kill_recorded(rec: dict | None, grace: float = KILL_GRACE) -> None:
    """SIGTERM the recorded process, SIGKILL after `grace` s; wait until it is gone."""
    if not _alive(rec):
        if rec and rec.get("pid"):
            _reap(int(rec["pid"]))
        return
    pid = int(rec["pid"])
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        if not _alive(rec):
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not _alive(rec):
                break
            time.sleep(0.02)
    _reap(pid)


# --------------------------------------------------------------------------
# state files
# --------------------------------------------------------------------------

def _check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SandboxError(f"not a sandbox name of this harness: {name!r} "
                           f"(expected {PREFIX}<8 hex digits>)")
    return name


def _sandbox_dir(name: str) -> str:
    return os.path.join(ROOT, _check_name(name))


def _state_path(name: str) -> str:
    return os.path.join(_sandbox_dir(name), "state.json")


def read_state(name: str) -> dict | None:
    """The sandbox's recorded state, or None if it does not exist (any more)."""
    try:
        with open(_state_path(name), encoding="utf-8") as f:
            return _json.load(f)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:
        return {}  # unreadable: still a sandbox dir, teardown by name


def _write_state(state: dict, directory: str | None = None) -> None:
    directory = directory or state["dir"]
    tmp = os.path.join(directory, f".state.json.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        _json.dump(state, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, os.path.join(directory, "state.json"))


def _netns_exists(ns: str) -> bool:
    return os.path.exists(os.path.join("/run/netns", ns))


def _run(cmd: Sequence[str], *, input: str | None = None, check: bool = True,
         timeout: float | None = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), input=input, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise SandboxCommandError(proc.returncode, list(cmd), proc.stdout, proc.stderr)
    return proc


# --------------------------------------------------------------------------
# teardown, sweep, list
# --------------------------------------------------------------------------

# mptcpstate keeps its undo records and its lock per network namespace in
# MPTCPSTATE_RUN_DIR/<namespace cookie> (rust/src/apply/record.rs).
MPTCPSTATE_RUN_DIR = "/run/mptcpstate"
_SO_NETNS_COOKIE = 71
_CLONE_NEWNET = 0x40000000


def netns_cookie(netns: str) -> int:
    """The network namespace's cookie (SO_NETNS_COOKIE): mptcpstate names the namespace's
    directory of undo records after it (MPTCPSTATE_RUN_DIR/<cookie>). Read by a thread of
    its own that enters the namespace (setns moves the calling thread only) and ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    out: dict = {}

    def probe() -> None:
        try:
            fd = os.open(os.path.join("/run/netns", netns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                raw = s.getsockopt(socket.SOL_SOCKET, _SO_NETNS_COOKIE, 8)
            out["cookie"] = struct.unpack("Q", raw)[0]
        except OSError as e:
            out["error"] = e

    t = threading.Thread(target=probe, name=f"netns-cookie-{netns}")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["cookie"]


def _remove_idle_run_dirs(cookies: Iterable[int]) -> None:
    """Removes mptcpstate's directory of each (deleted) namespace when it holds nothing
    but its lock: nothing can use it again, the cookie is never reused. A directory that
    still holds a record is left, for the test that left it to be found."""
    for cookie in cookies:
        d = os.path.join(MPTCPSTATE_RUN_DIR, str(cookie))
        with contextlib.suppress(OSError):
            if set(os.listdir(d)) <= {"lock"}:
                shutil.rmtree(d, ignore_errors=True)


def stop_sandbox(name: str, *, grace: float = KILL_GRACE, procs: dict | None = None) -> None:
    """Tear a sandbox down: supervisor, NetworkManager, dbus-daemon (recorded PIDs
    only), both namespaces, the directory.  Idempotent, also for half-built ones.
    `procs` adds process records the caller knows of (same shape as state["procs"])."""
    _check_name(name)
    directory = _sandbox_dir(name)
    lock_fd = None
    try:
        try:
            lock_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            lock_fd = None
        if lock_fd is not None:
            # Serialises concurrent stops (CLI stop vs. supervisor vs. sweep).
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
        state = read_state(name) or {}
        procs = dict(procs or {})
        procs.update(state.get("procs", {}))
        sup = procs.get("supervisor")
        if sup and int(sup.get("pid", 0)) != os.getpid():
            _kill_recorded(sup, grace=1.0)
        # NetworkManager first (it talks to the bus), then the bus.
        # NM takes ~4 s to shut down with 1000 devices: no need to be patient.
        _kill_recorded(procs.get("nm"), grace=min(grace, NM_KILL_GRACE))
        _kill_recorded(procs.get("dbus"), grace=grace)
        cookies = []
        for ns in (f"{name}-sbx", f"{name}-peer"):
            if _netns_exists(ns):
                with contextlib.suppress(OSError):
                    cookies.append(netns_cookie(ns))
                proc = _run(["ip", "netns", "del", ns], check=False)
                if proc.returncode != 0 and _netns_exists(ns):
                    raise SandboxError(f"ip netns del {ns} failed: {proc.stderr.strip()}")
        _remove_idle_run_dirs(cookies)
        if os.path.isdir(directory):
            shutil.rmtree(directory, ignore_errors=True)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def list_sandboxes() -> list[dict]:
    """Every sandbox of this harness under ROOT (and orphaned namespaces), with liveness."""
    out = []
    names = set()
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(os.listdir(ROOT)):
            if NAME_RE.match(entry):
                names.add(entry)
    with contextlib.suppress(FileNotFoundError):
        for ns in os.listdir("/run/netns"):
            m = NETNS_RE.match(ns)
            if m:
                names.add(m.group(1))
    for name in sorted(names):
        st = read_state(name)
        procs = (st or {}).get("procs", {})
        out.append({
            "name": name,
            "status": (st or {}).get("status", "orphan" if st is None else "unknown"),
            "owner_pid": ((st or {}).get("owner") or {}).get("pid"),
            "owner_alive": _alive((st or {}).get("owner")),
            "nm_alive": _alive(procs.get("nm")),
            "dbus_alive": _alive(procs.get("dbus")),
            "supervisor_alive": _alive(procs.get("supervisor")),
            "netns": [ns for ns in (f"{name}-sbx", f"{name}-peer") if _netns_exists(ns)],
            "veths": len((st or {}).get("veths", [])),
        })
    return out


def sweep(*, all: bool = False) -> list[str]:
    """Stop every sandbox whose owner process is dead (every one with all=True).
    Namespaces named like ours but without a state directory are removed too."""
    stopped = []
    # Directories of starts that died before their first step (nothing else exists yet).
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(ROOT):
            path = os.path.join(ROOT, entry)
            if entry.startswith(".new-") and NAME_RE.match(entry[5:]):
                with contextlib.suppress(OSError):
                    if all or time.time() - os.path.getmtime(path) > 60:
                        shutil.rmtree(path, ignore_errors=True)
    for info in list_sandboxes():
        if all or not info["owner_alive"]:
            stop_sandbox(info["name"])
            stopped.append(info["name"])
    return stopped


# --------------------------------------------------------------------------
# supervisor
# --------------------------------------------------------------------------

def _spawn_detached(argv: Sequence[str], log_path: str) -> int:
    """Double-fork + setsid: start argv detached from us (never our child, no
    inherited fds but a log file).  Returns the grandchild's PID."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            os.setsid()
            pid2 = os.fork()
            if pid2 == 0:  # grandchild
                devnull = os.open(os.devnull, os.O_RDONLY)
                logfd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(devnull, 0)
                os.dup2(logfd, 1)
                os.dup2(logfd, 2)
                os.closerange(3, 65536)
                os.chdir("/")
                os.execv(argv[0], list(argv))
            os.write(w, str(pid2).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 64)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    try:
        return int(b"".join(chunks))
    except ValueError:
        raise SandboxError("could not start the supervisor process") from None


def supervise(name: str, interval: float = SUPERVISOR_INTERVAL) -> int:
    """Supervisor main loop: wait until the owner dies (or the sandbox is gone), then stop it."""
    _check_name(name)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        state = read_state(name)
        if state is None:
            return 0  # stopped by someone else
        owner = state.get("owner")
        if owner and not _alive(owner):
            print(f"{time.strftime('%F %T')} owner {owner.get('pid')} is gone: "
                  f"stopping sandbox {name}", flush=True)
            try:
                stop_sandbox(name)
            except Exception as exc:  # keep going: sweep can finish it
                print(f"stop failed: {exc}", flush=True)
                return 1
            return 0
        time.sleep(interval)


# --------------------------------------------------------------------------
# configuration files
# --------------------------------------------------------------------------

def dbus_config(socket_path: str, *, base: str = DBUS_SYSTEM_CONF,
                nm_policy: str = NM_DBUS_POLICY) -> str:
    """Derive a private system-bus config from Debian's system.conf: no <user>, no
    fork, no pidfile/syslog, no service activation, our own <listen>, and only
    NetworkManager's policy included."""
    if not os.path.isfile(nm_policy):
        raise SandboxError(f"{nm_policy} is missing: is the network-manager package installed?")
    tree = ET.parse(base)
    root = tree.getroot()
    drop = {"user", "fork", "pidfile", "syslog", "servicehelper", "standard_system_servicedirs",
            "servicedir", "includedir", "include", "listen", "apparmor", "selinux"}
    for child in list(root):
        if child.tag in drop:
            root.remove(child)
    listen = ET.SubElement(root, "listen")
    listen.text = f"unix:path={socket_path}"
    include = ET.SubElement(root, "include")
    include.text = nm_policy
    ET.indent(tree, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return ('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"\n'
            ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
            f"<!-- generated by nmsandbox.py from {base} -->\n{body}\n")


#: Values of NetworkManager's `[main] auth-polkit`: "false" (the harness's default:
#: every client may do everything), "root-only" (as a distribution ships NM without
#: polkit: only root may change anything), "true" (ask polkit, which the sandbox lacks).
AUTH_POLKIT = ("false", "root-only", "true")


def nm_config(keyfile_dir: str, auth_polkit: str = "false") -> str:
    if auth_polkit not in AUTH_POLKIT:
        raise SandboxError(f"auth-polkit must be one of {', '.join(AUTH_POLKIT)}: {auth_polkit!r}")
    return (
        "# generated by nmsandbox.py\n"
        "[main]\n"
        "plugins=keyfile\n"
        f"auth-polkit={auth_polkit}\n"
        "dhcp=internal\n"
        "dns=none\n"
        "rc-manager=unmanaged\n"
        "systemd-resolved=false\n"
        "hostname-mode=none\n"
        "no-auto-default=*\n"
        "\n"
        "[keyfile]\n"
        f"path={keyfile_dir}\n"
        "\n"
        "[connectivity]\n"
        "enabled=false\n"
    )


# Runs inside `ip netns exec <sbx> unshare --mount --uts --propagation private`.
# A read-only /sys is essential: with a writable one NM waits for udev (which
# does not run) and leaves every device unmanaged.
_NM_MOUNT_SCRIPT = r"""
set -e
mount -o remount,bind,ro /sys
mount -t tmpfs -o mode=0755 nmsandbox-run /run
mkdir -p /run/NetworkManager
mount --bind "$1" /run/NetworkManager
mount --bind "$2" /var/lib/NetworkManager
mount --bind "$3" /etc/NetworkManager
shift 3
exec "$@"
"""

# The same, for a NetworkManager from another root file system (a debootstrap of a
# newer Debian, scripts/nm-roots.sh): the root gets this namespace's /proc, its
# read-only /sys, /dev, a tmpfs /run with the private /run/NetworkManager, the private
# NM directories, and the sandbox's directory at the same path (so the bus socket,
# the configuration and the keyfile paths are the same inside and out); then NM runs
# chrooted there. Every mount is in the private mount namespace: the root on disk
# gets none of them.
_NM_ROOT_MOUNT_SCRIPT = r"""
set -e
r=$1
mount -o remount,bind,ro /sys
mount --bind /proc "$r/proc"
mount --rbind /sys "$r/sys"
mount -o remount,bind,ro "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs -o mode=0755 nmsandbox-run "$r/run"
mkdir -p "$r/run/NetworkManager"
mount --bind "$2" "$r/run/NetworkManager"
mount --bind "$3" "$r/var/lib/NetworkManager"
mount --bind "$4" "$r/etc/NetworkManager"
mount -t tmpfs -o mode=1777 nmsandbox-tmp "$r/tmp"
mkdir -p "$r$5"
mount --bind "$5" "$r$5"
shift 5
exec chroot "$r" "$@"
"""

#: Where scripts/nm-roots.sh puts the roots (MPTCPSTATE_NM_ROOTS overrides it).
NM_ROOTS = os.environ.get("MPTCPSTATE_NM_ROOTS", "/var/cache/mptcpstate/nm-roots")
#: A finished root holds this file (scripts/nm-roots.sh writes it last).
NM_ROOT_DONE = ".mptcpstate-root-done"


def nm_root_default() -> str | None:
    """The NetworkManager root a Sandbox uses when none is given: $NMSANDBOX_NM_ROOT
    (a directory, or a suite name under NM_ROOTS such as `sid`), else None (the
    machine's own NetworkManager)."""
    value = os.environ.get("NMSANDBOX_NM_ROOT") or None
    return resolve_nm_root(value) if value else None


def resolve_nm_root(value: str) -> str:
    """A root directory from a path or a suite name under NM_ROOTS; it must be a
    finished root holding a NetworkManager."""
    path = value if "/" in value else os.path.join(NM_ROOTS, value)
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, NM_ROOT_DONE)):
        raise SandboxError(f"{path} is not a finished NetworkManager root "
                           f"(no {NM_ROOT_DONE}): build it with scripts/nm-roots.sh")
    if not os.access(os.path.join(path, "usr/sbin/NetworkManager"), os.X_OK):
        raise SandboxError(f"{path} holds no usr/sbin/NetworkManager")
    return path


def nm_binary_version(nm_root: str | None = None) -> str:
    """What `NetworkManager --version` prints: the machine's, or that of a root (run
    chrooted there)."""
    cmd = (["chroot", nm_root, "/usr/sbin/NetworkManager", "--version"] if nm_root
           else [NM_BIN, "--version"])
    return _run(cmd, timeout=30).stdout.strip()


def version_tuple(version: str) -> tuple[int, ...]:
    """'1.52.1' -> (1, 52, 1); a suffix after the numbers ('1.58.1-dev') is ignored."""
    m = re.match(r"^(\d+(?:\.\d+)*)", version or "")
    if not m:
        raise SandboxError(f"not a version: {version!r}")
    return tuple(int(x) for x in m.group(1).split("."))


# --------------------------------------------------------------------------
# the sandbox
# --------------------------------------------------------------------------

def _veth_names(veths: Iterable[str] | None, count: int | None, prefix: str) -> list[str]:
    if count is not None:
        if veths:
            raise SandboxError("give either veth names or a count, not both")
        if count < 0:
            raise SandboxError("veth count must be >= 0")
        names = [f"{prefix}{i}" for i in range(1, count + 1)]
    elif veths is None:
        names = ["eth1"]
    else:
        names = list(veths)
    seen = set()
    for n in names:
        if not _IFNAME_RE.match(n) or n in ("lo", ".", ".."):
            raise SandboxError(f"invalid interface name: {n!r}")
        if n in seen:
            raise SandboxError(f"duplicate interface name: {n!r}")
        seen.add(n)
    return names


class Sandbox:
    """A private NetworkManager in its own network namespaces.

    >>> with Sandbox(["eth1", "eth2"]) as sb:
    ...     sb.nmcli("device")
    """

    def __init__(self, veths: Iterable[str] | None = None, *, count: int | None = None,
                 prefix: str = "eth", nm: bool = True, owner_pid: int | None = None,
                 timeout: float | None = None, log_level: str = "INFO",
                 supervise: bool = True, auth_polkit: str = "false",
                 nm_root: str | None = None) -> None:
        self._veth_request = _veth_names(veths, count, prefix)
        if auth_polkit not in AUTH_POLKIT:
            raise SandboxError(f"auth-polkit must be one of {', '.join(AUTH_POLKIT)}")
        self.auth_polkit = auth_polkit
        # None: $NMSANDBOX_NM_ROOT or the machine's NM; "": the machine's NM.
        self.nm_root = resolve_nm_root(nm_root) if nm_root else (
            nm_root_default() if nm_root is None and nm else None)
        if timeout is None:  # NM needs ~5 ms per link, several times that on a loaded host
            timeout = DEFAULT_TIMEOUT + 0.05 * len(self._veth_request)
        self.with_nm = nm
        self.owner_pid = owner_pid if owner_pid is not None else os.getpid()
        self.timeout = timeout
        self.log_level = log_level
        self.supervised = supervise
        self.state: dict = {}
        self._popens: list[subprocess.Popen] = []
        self.start_seconds: float | None = None

    # ---- attributes read from the state ----------------------------------
    name = property(lambda self: self.state.get("name"))
    netns = property(lambda self: self.state.get("netns"))
    peer_netns = property(lambda self: self.state.get("peer_netns"))
    dir = property(lambda self: self.state.get("dir"))
    bus_address = property(lambda self: self.state.get("bus_address"))
    keyfile_dir = property(lambda self: self.state.get("keyfile_dir"))
    nm_log = property(lambda self: self.state.get("nm_log"))
    veths = property(lambda self: list(self.state.get("veths", [])))
    #: The version the running NetworkManager reports on the bus (its Version property).
    nm_version = property(lambda self: self.state.get("nm_version"))
    peer_veths = property(lambda self: list(self.state.get("peer_veths", [])))

    @property
    def nm_pid(self) -> int | None:
        return (self.state.get("procs", {}).get("nm") or {}).get("pid")

    @property
    def dbus_pid(self) -> int | None:
        return (self.state.get("procs", {}).get("dbus") or {}).get("pid")

    @property
    def supervisor_pid(self) -> int | None:
        return (self.state.get("procs", {}).get("supervisor") or {}).get("pid")

    def info(self) -> dict:
        """The JSON object that `start --json` prints."""
        st = self.state
        return {
            "name": st.get("name"),
            "netns": st.get("netns"),
            "peer_netns": st.get("peer_netns"),
            "dir": st.get("dir"),
            "bus_address": st.get("bus_address"),
            "keyfile_dir": st.get("keyfile_dir"),
            "nm": st.get("nm"),
            "nm_pid": self.nm_pid,
            "dbus_pid": self.dbus_pid,
            "supervisor_pid": self.supervisor_pid,
            "owner_pid": (st.get("owner") or {}).get("pid"),
            "nm_log": st.get("nm_log"),
            "dbus_log": st.get("dbus_log"),
            "veths": list(st.get("veths", [])),
            "peer_veths": list(st.get("peer_veths", [])),
            "start_seconds": st.get("start_seconds"),
            "auth_polkit": st.get("auth_polkit", "false"),
            "nm_root": st.get("nm_root"),
            "nm_version": st.get("nm_version"),
        }

    @classmethod
    def attach(cls, name: str) -> "Sandbox":
        """A handle on an existing sandbox (e.g. started by the CLI)."""
        state = read_state(name)
        if not state:
            raise SandboxError(f"no such sandbox: {name}")
        sb = cls.__new__(cls)
        sb._veth_request = list(state.get("veths", []))
        sb.with_nm = bool(state.get("nm"))
        sb.owner_pid = (state.get("owner") or {}).get("pid")
        sb.timeout = DEFAULT_TIMEOUT
        sb.log_level = state.get("log_level", "INFO")
        sb.auth_polkit = state.get("auth_polkit", "false")
        sb.nm_root = state.get("nm_root")
        sb.supervised = bool(state.get("procs", {}).get("supervisor"))
        sb.state = state
        sb._popens = []
        sb.start_seconds = state.get("start_seconds")
        return sb

    # ---- lifecycle ---------------------------------------------------------
    def __enter__(self) -> "Sandbox":
        if not self.state:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Sandbox {self.name or '(not started)'} veths={len(self.veths)} nm={self.with_nm}>"

    def start(self) -> "Sandbox":
        if self.state:
            raise SandboxError("sandbox already started")
        if os.geteuid() != 0:
            raise SandboxError("nmsandbox needs root (network namespaces, mounts)")
        owner = _proc_record(self.owner_pid)
        t0 = time.monotonic()
        os.makedirs(ROOT, mode=0o755, exist_ok=True)
        # Build the directory under a temporary name, then rename it into place:
        # every <ROOT>/mps-* directory has a state file from its first moment.
        for _ in range(100):
            name = PREFIX + secrets.token_hex(4)
            final = os.path.join(ROOT, name)
            if not os.path.exists(final) and not _netns_exists(f"{name}-sbx") \
                    and not _netns_exists(f"{name}-peer"):
                break
        else:
            raise SandboxError("could not find a free sandbox name")
        tmpdir = os.path.join(ROOT, f".new-{name}")
        os.mkdir(tmpdir, 0o755)
        self.state = {
            "name": name,
            "status": "starting",
            "created": time.time(),
            "netns": f"{name}-sbx",
            "peer_netns": f"{name}-peer",
            "dir": final,
            "nm": self.with_nm,
            "bus_address": None,
            "keyfile_dir": os.path.join(final, "system-connections") if self.with_nm else None,
            "nm_log": os.path.join(final, "NetworkManager.log") if self.with_nm else None,
            "dbus_log": os.path.join(final, "dbus-daemon.log") if self.with_nm else None,
            "supervisor_log": os.path.join(final, "supervisor.log"),
            "log_level": self.log_level,
            "auth_polkit": self.auth_polkit,
            "nm_root": self.nm_root,
            "nm_version": None,
            "veths": [],
            "peer_veths": [],
            "owner": owner,
            "procs": {},
            "harness": os.path.abspath(__file__),
        }
        _write_state(self.state, tmpdir)
        os.rename(tmpdir, final)
        try:
            if self.supervised:
                self._start_supervisor()
            for ns in (self.netns, self.peer_netns):
                _run(["ip", "netns", "add", ns])
                _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            self._create_veths(self._veth_request)
            if self.with_nm:
                self._start_dbus()
                self._start_nm()
                self._wait_managed(self.veths, deadline=t0 + self.timeout)
                self._check_nm_version()
            self.start_seconds = round(time.monotonic() - t0, 3)
            self.state["start_seconds"] = self.start_seconds
            self.state["status"] = "running"
            self._save()
        except BaseException as exc:
            log = self.nm_log
            tail = self._log_tail()
            with contextlib.suppress(Exception):
                self.stop()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            # Keep a copy of NM's log: the sandbox dir is gone now.
            saved = None
            if tail:
                saved = os.path.join(ROOT, f"failed-{name}-NetworkManager.log")
                with contextlib.suppress(OSError):
                    with open(saved, "w", encoding="utf-8") as f:
                        f.write(tail)
            msg = f"sandbox {name} failed to start: {exc}"
            if log and tail:
                msg += f"\nNetworkManager log: {saved} (last lines below)\n{tail[-4000:]}"
            elif log:
                msg += "\n(NetworkManager wrote nothing to its log)"
            err = SandboxTimeout(msg) if isinstance(exc, TimeoutError) else SandboxError(msg)
            raise err from exc
        return self

    def stop(self) -> None:
        """Tear down (idempotent)."""
        if not self.state:
            return
        stop_sandbox(self.name, procs=self.state.get("procs"))
        for p in self._popens:
            with contextlib.suppress(Exception):
                p.wait(timeout=1)
        self._popens.clear()
        self.state["status"] = "stopped"

    # ---- internals ---------------------------------------------------------
    def _save(self) -> None:
        _write_state(self.state)

    def _log_tail(self, limit: int = 20000) -> str:
        path = self.nm_log
        if not path:
            return ""
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - limit))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _start_supervisor(self) -> None:
        argv = [sys.executable, os.path.abspath(__file__), "_supervise", self.name]
        pid = _spawn_detached(argv, self.state["supervisor_log"])
        rec = None
        for _ in range(100):
            st = _proc_stat(pid)
            if st is not None:
                rec = {"pid": pid, "start": st[1]}
                break
            time.sleep(0.01)
        if rec is None:
            raise SandboxError("supervisor died at once; see " + self.state["supervisor_log"])
        self.state["procs"]["supervisor"] = rec
        self._save()

    def _create_veths(self, names: Sequence[str]) -> None:
        names = list(names)
        existing = set(self.state.get("veths", []))
        for n in names:
            if n in existing:
                raise SandboxError(f"veth {n} exists already")
        if not names:
            return
        # One `ip -batch` process per namespace, whatever the number of links.
        peer = self.peer_netns
        _run(["ip", "-n", self.netns, "-batch", "-"],
             input="".join(f"link add {n} type veth peer name {n} netns {peer}\n" for n in names))
        self.state["veths"] = self.state.get("veths", []) + names
        self.state["peer_veths"] = self.state.get("peer_veths", []) + names
        self._save()
        _run(["ip", "-n", peer, "-batch", "-"],
             input="".join(f"link set {n} up\n" for n in names))
        if not self.with_nm:
            # No NetworkManager to bring the sandbox ends up: do it here.
            _run(["ip", "-n", self.netns, "-batch", "-"],
                 input="".join(f"link set {n} up\n" for n in names))

    def _popen_logged(self, cmd: list[str], log_path: str, env: dict) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 env=env, start_new_session=True, close_fds=True, cwd="/")
        self._popens.append(p)
        return p

    def _start_dbus(self) -> None:
        d = self.dir
        sock = os.path.join(d, "system_bus_socket")
        conf = os.path.join(d, "dbus-system.conf")
        # NetworkManager's bus policy as its own package ships it.
        policy = NM_DBUS_POLICY
        if self.nm_root:
            policy = os.path.join(self.nm_root, NM_DBUS_POLICY.lstrip("/"))
        with open(conf, "w", encoding="utf-8") as f:
            f.write(dbus_config(sock, nm_policy=policy))
        env = _clean_env()
        p = self._popen_logged(
            ["ip", "netns", "exec", self.netns, DBUS_BIN, "--nofork", "--nopidfile",
             f"--config-file={conf}"], self.state["dbus_log"], env)
        self.state["procs"]["dbus"] = _proc_record(p.pid)
        self.state["bus_address"] = f"unix:path={sock}"
        self._save()
        deadline = time.monotonic() + 10
        while True:
            if p.poll() is not None:
                raise SandboxError(f"dbus-daemon exited with {p.returncode}; see "
                                   f"{self.state['dbus_log']}: {_read(self.state['dbus_log'])}")
            if os.path.exists(sock):
                with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
                    s.connect(sock)
                    return
            if time.monotonic() > deadline:
                raise SandboxTimeout("dbus-daemon did not listen within 10 s")
            time.sleep(0.01)

    def _start_nm(self) -> None:
        d = self.dir
        dirs = {k: os.path.join(d, k) for k in
                ("run", "var-lib", "etc", "conf.d", "system-conf.d", "system-connections")}
        for path in dirs.values():
            os.makedirs(path, mode=0o755, exist_ok=True)
        conf = os.path.join(d, "NetworkManager.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(nm_config(self.keyfile_dir, self.auth_polkit))
        base = self.nm_root or "/"
        for target in ("var/lib/NetworkManager", "etc/NetworkManager"):
            if not os.path.isdir(os.path.join(base, target)):
                raise SandboxError(f"{os.path.join(base, target)} does not exist: "
                                   f"is network-manager installed?")
        if self.nm_root:
            mounts = ["sh", "-c", _NM_ROOT_MOUNT_SCRIPT, "nmsandbox-nm", self.nm_root,
                      dirs["run"], dirs["var-lib"], dirs["etc"], d, "/usr/sbin/NetworkManager"]
        else:
            mounts = ["sh", "-c", _NM_MOUNT_SCRIPT, "nmsandbox-nm",
                      dirs["run"], dirs["var-lib"], dirs["etc"], NM_BIN]
        cmd = [
            "ip", "netns", "exec", self.netns,
            "unshare", "--mount", "--uts", "--propagation", "private",
            *mounts, "--debug", f"--log-level={self.log_level}",
            f"--config={conf}",
            f"--config-dir={dirs['conf.d']}",
            f"--system-config-dir={dirs['system-conf.d']}",
            f"--state-file={os.path.join(dirs['var-lib'], 'NetworkManager.state')}",
            f"--intern-config={os.path.join(dirs['var-lib'], 'NetworkManager-intern.conf')}",
            f"--pid-file={os.path.join(dirs['run'], 'NetworkManager.pid')}",
        ]
        env = _clean_env()
        env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address
        p = self._popen_logged(cmd, self.nm_log, env)
        self.state["procs"]["nm"] = _proc_record(p.pid)
        self._save()

    def _check_nm_version(self) -> None:
        """Reads the running NetworkManager's Version from the bus and checks it is
        what its binary says (`NetworkManager --version`, chrooted for a root):
        the version is read, never assumed."""
        proc = subprocess.run(
            ["dbus-send", f"--bus={self.bus_address}", "--print-reply=literal",
             "--dest=org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager",
             "org.freedesktop.DBus.Properties.Get", "string:org.freedesktop.NetworkManager",
             "string:Version"], capture_output=True, text=True, timeout=30, env=_clean_env())
        if proc.returncode != 0:
            raise SandboxError(f"reading NetworkManager's Version: {proc.stderr.strip()}")
        running = proc.stdout.split()[-1]
        binary = nm_binary_version(self.nm_root)
        if running != binary:
            raise SandboxError(f"the NetworkManager on the bus says {running}, its binary "
                               f"{self.nm_root or NM_BIN} says {binary}")
        self.state["nm_version"] = running
        self._save()

    def nm_version_tuple(self) -> tuple[int, ...]:
        """nm_version as a tuple of ints, (1, 58, 1)."""
        return version_tuple(self.nm_version)

    def kill_nm(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Stops this sandbox's NetworkManager with `sig` (SIGKILL by default: no
        clean-up, as when it crashes) and waits until it is gone. Its checkpoints die with
        it; the profiles on disk and /run/NetworkManager stay."""
        rec = self.state.get("procs", {}).get("nm")
        if not rec or not _alive(rec):
            raise SandboxError("NetworkManager is not running in this sandbox")
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(rec["pid"]), sig)
        deadline = time.monotonic() + timeout
        while _alive(rec):
            _reap(int(rec["pid"]))
            if time.monotonic() > deadline:
                raise SandboxTimeout(f"NetworkManager ({rec['pid']}) still runs {timeout} s "
                                     f"after signal {sig}")
            time.sleep(0.02)
        _reap(int(rec["pid"]))
        self._popens = [p for p in self._popens if p.pid != int(rec["pid"])]
        # The bus frees the name a moment after the process is gone: a NetworkManager
        # started before that exits at once ("Service already taken", 1 restart in ~30).
        while self._nm_name_owned():
            if time.monotonic() > deadline:
                raise SandboxTimeout(f"the bus still gives org.freedesktop.NetworkManager "
                                     f"an owner {timeout} s after NetworkManager was killed")
            time.sleep(0.01)

    def _nm_name_owned(self) -> bool:
        """Whether org.freedesktop.NetworkManager has an owner on this sandbox's bus."""
        proc = subprocess.run(
            ["dbus-send", f"--bus={self.bus_address}", "--print-reply",
             "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
             "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.NetworkManager"],
            capture_output=True, text=True, timeout=10, env=_clean_env())
        if proc.returncode != 0:
            raise SandboxError(f"asking the bus for NetworkManager's name: {proc.stderr.strip()}")
        return "boolean true" in proc.stdout

    def start_nm(self, timeout: float | None = None) -> None:
        """Starts NetworkManager again (after kill_nm) with the same configuration,
        directories and log, and returns once it is on the bus and manages every veth.
        The supervisor tears the new process down like the first (state.json names it)."""
        if not self.with_nm:
            raise SandboxError("this sandbox has no NetworkManager (--no-nm)")
        if _alive(self.state.get("procs", {}).get("nm")):
            raise SandboxError("NetworkManager runs already")
        offset = _file_size(self.nm_log)
        if timeout is None:
            timeout = DEFAULT_TIMEOUT + 0.05 * len(self.veths)
        self._start_nm()
        self._wait_managed(self.veths, time.monotonic() + timeout, log_offset=offset)
        self._check_nm_version()

    def restart_nm(self, sig: int = signal.SIGKILL, timeout: float | None = None) -> None:
        """kill_nm(sig), then start_nm()."""
        self.kill_nm(sig)
        self.start_nm(timeout)

    def _nm_device_states(self) -> dict[str, str]:
        try:
            proc = self.nmcli("-t", "-f", "DEVICE,STATE", "device", check=False, timeout=60)
        except subprocess.TimeoutExpired:
            return {}
        if proc.returncode != 0:
            return {}
        out = {}
        for line in proc.stdout.splitlines():
            dev, _, state = line.rpartition(":")
            out[dev.replace("\\:", ":")] = state
        return out

    def _wait_managed(self, names: Sequence[str], deadline: float,
                      log_offset: int = 0) -> None:
        """Wait until NM is on the bus and no veth in `names` is unmanaged or
        unavailable.  Progress is read from NM's log (its INFO 'state change'
        lines cost NM nothing, whereas polling nmcli with 1000 devices slows NM
        down by a factor 2-3); nmcli has the final word."""
        pending = set(names)
        watcher = _NMLogWatcher(self.nm_log, log_offset)
        use_log = self.log_level.upper() in ("INFO", "DEBUG", "TRACE", "KEEP")
        interval = 0.02 if len(pending) < 50 else 0.2
        states: dict[str, str] = {}
        while True:
            if not _alive(self.state["procs"].get("nm")):
                codes = [p.poll() for p in self._popens if p.pid == self.nm_pid]
                status = f" with status {codes[0]}" if codes and codes[0] is not None else ""
                raise SandboxError(f"NetworkManager exited during start{status}")
            if use_log:
                seen = watcher.poll()
                pending = {n for n in pending if seen.get(n, "unmanaged")
                           in ("unmanaged", "unavailable")}
            if not pending or not use_log:
                states = self._nm_device_states()
                if states:
                    pending = {n for n in names
                               if states.get(n, "unmanaged") in ("unmanaged", "unavailable")}
                    if not pending:
                        return
                    use_log = False  # the log said ready but nmcli disagrees: poll nmcli
            if time.monotonic() > deadline:
                sample = sorted(pending)[:10]
                raise SandboxTimeout(
                    f"NetworkManager did not manage {len(pending)} veth(s) in time "
                    f"(e.g. {', '.join(n + '=' + states.get(n, '?') for n in sample)}); "
                    f"NM answered on the bus: {bool(states)}")
            time.sleep(interval)

    # ---- helpers for tests -------------------------------------------------
    def env(self, extra: dict | None = None) -> dict:
        """os.environ plus DBUS_SYSTEM_BUS_ADDRESS of this sandbox's bus."""
        env = dict(os.environ)
        if self.bus_address:
            env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address
        else:
            env.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        env["NMSANDBOX_NAME"] = self.name or ""
        env["NMSANDBOX_NETNS"] = self.netns or ""
        if extra:
            env.update(extra)
        return env

    def run(self, cmd: Sequence[str] | str, *, check: bool = True,
            **kw: Any) -> subprocess.CompletedProcess:
        """Run cmd (argv list, or a shell string) in the sandbox netns with env().
        Captures text output unless told otherwise; check=True raises
        SandboxCommandError (its message includes stdout/stderr)."""
        return self._run_in(self.netns, cmd, check=check, **kw)

    def peer_run(self, cmd: Sequence[str] | str, *, check: bool = True,
                 **kw: Any) -> subprocess.CompletedProcess:
        """Like run(), in the peer namespace."""
        return self._run_in(self.peer_netns, cmd, check=check, **kw)

    def _run_in(self, ns: str, cmd: Sequence[str] | str, *, check: bool, **kw: Any):
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        kw.setdefault("env", self.env())
        if "stdout" not in kw and "stderr" not in kw:
            kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        proc = subprocess.run(["ip", "netns", "exec", ns] + argv, **kw)
        if check and proc.returncode != 0:
            raise SandboxCommandError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def nmcli(self, *args: str, check: bool = True, timeout: float | None = 60,
              **kw: Any) -> subprocess.CompletedProcess:
        """nmcli against this sandbox's NetworkManager (D-Bus only: runs in place)."""
        if not self.bus_address:
            raise SandboxError("this sandbox has no NetworkManager (--no-nm)")
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        argv = ["nmcli"] + [str(a) for a in args]
        proc = subprocess.run(argv, env=self.env(), timeout=timeout, **kw)
        if check and proc.returncode != 0:
            raise SandboxCommandError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def _ip(self, ns: str, args: Sequence[str], json: bool, check: bool):
        argv = ["ip", "-n", ns] + (["-j"] if json else []) + [str(a) for a in args]
        proc = _run(argv, check=check)
        if not json:
            return proc.stdout
        text = proc.stdout.strip()
        return _json.loads(text) if text else []

    def ip(self, *args: str, json: bool = False, check: bool = True):
        """`ip ARGS` in the sandbox netns: stdout text, or parsed `ip -j` output."""
        return self._ip(self.netns, args, json, check)

    def peer_ip(self, *args: str, json: bool = False, check: bool = True):
        """`ip ARGS` in the peer netns."""
        return self._ip(self.peer_netns, args, json, check)

    def endpoints(self) -> list[dict]:
        """MPTCP endpoints of the sandbox netns, from `ip -j mptcp endpoint show`.
        Each: {"address", "id", "dev" (or None), "port" (or None), "flags": sorted
        list of signal/subflow/backup/fullmesh/implicit...}."""
        proc = _run(["ip", "-n", self.netns, "-j", "mptcp", "endpoint", "show"], check=False)
        if proc.returncode == 0 and proc.stdout.strip().startswith("["):
            raw = _json.loads(proc.stdout)
        else:
            raw = parse_endpoints_text(self.ip("mptcp", "endpoint", "show"))
        return [_normalize_endpoint(e) for e in raw]

    def mptcp_limits(self) -> dict:
        """MPTCP limits of the sandbox netns, e.g. {"add_addr_accepted": 0, "subflows": 2}.
        (iproute2 6.1 ignores -j for `mptcp limits show`: its text is parsed.)"""
        text = self.ip("mptcp", "limits", "show").strip()
        if text.startswith("{"):
            return _json.loads(text)
        words = text.split()
        return {k: int(v) for k, v in zip(words[0::2], words[1::2])}

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0,
                 interval: float = 0.1, what: str | None = None) -> Any:
        return wait_for(predicate, timeout=timeout, interval=interval, what=what)

    def add_veths(self, names: Iterable[str] | None = None, *, count: int | None = None,
                  prefix: str = "eth", wait: bool = True,
                  timeout: float | None = None) -> list[str]:
        """Add veth pairs after start (names, or `count` more named prefix<k>
        continuing after the existing ones).  With NM, wait until it manages them."""
        if count is not None:
            have = set(self.veths)
            new, k = [], 1
            while len(new) < count:
                n = f"{prefix}{k}"
                if n not in have:
                    new.append(n)
                k += 1
            names = new
        names = _veth_names(names, None, prefix)
        offset = _file_size(self.nm_log)
        self._create_veths(names)
        if self.with_nm and wait:
            if timeout is None:
                timeout = DEFAULT_TIMEOUT + 0.05 * len(names)
            self._wait_managed(names, time.monotonic() + timeout,
                               log_offset=offset)
        return names


class _NMLogWatcher:
    """Follows NetworkManager's log: the latest state of each device."""

    _RE = re.compile(r"device \((?P<dev>[^)]+)\): state change: (?P<old>\S+) -> (?P<new>\S+)")

    def __init__(self, path: str | None, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        self.partial = b""
        self.states: dict[str, str] = {}

    def poll(self) -> dict[str, str]:
        if not self.path:
            return self.states
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return self.states
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            if b"state change" not in raw:
                continue
            m = self._RE.search(raw.decode(errors="replace"))
            if m:
                self.states[m.group("dev")] = m.group("new")
        return self.states


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1,
             what: str | None = None) -> Any:
    """Poll predicate until it returns a truthy value (returned).  Exceptions it
    raises count as 'not yet'.  SandboxTimeout after `timeout` s, naming the
    last value or exception."""
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = predicate()
            last_exc = None
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - retried
            last_exc = exc
        if time.monotonic() >= deadline:
            desc = what or getattr(predicate, "__name__", "condition")
            detail = f"last exception: {last_exc!r}" if last_exc else f"last value: {last!r}"
            raise SandboxTimeout(f"timed out after {timeout} s waiting for {desc}; {detail}")
        time.sleep(interval)


_EP_FLAGS = ("signal", "subflow", "backup", "fullmesh", "implicit", "laminar")


# The kernel's endpoint flag bits iproute2 6.1 has no name for: `ip -j` prints them as
# "rawflags": "HEX" (implicit 0x10, laminar 0x20 since Linux 6.18).
_EP_RAW_FLAGS = {0x10: "implicit", 0x20: "laminar"}


def _normalize_endpoint(e: dict) -> dict:
    out = dict(e)
    flags = e.get("flags")
    if not isinstance(flags, list):
        flags = [k for k in _EP_FLAGS if e.get(k) is True]
        raw = e.get("rawflags")
        if isinstance(raw, str):
            bits = int(raw, 16)
            flags += [n for b, n in _EP_RAW_FLAGS.items() if bits & b and n not in flags]
    out["flags"] = sorted(flags)
    out.setdefault("dev", None)
    out.setdefault("port", None)
    return out


def parse_endpoints_text(text: str) -> list[dict]:
    """Parse `ip mptcp endpoint show` text (fallback when -j is unsupported):
    '192.0.2.2 id 1 signal subflow dev eth1'."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        ep: dict[str, Any] = {"address": words[0]}
        flags = []
        i = 1
        while i < len(words):
            w = words[i]
            if w in ("id", "dev", "port") and i + 1 < len(words):
                ep[w] = int(words[i + 1]) if w in ("id", "port") else words[i + 1]
                i += 2
                continue
            flags.append(w)
            i += 1
        ep["flags"] = flags
        out.append(ep)
    return out


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "LANG", "LC_ALL", "TZ", "HOME")}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env


def _file_size(path: str | None) -> int:
    try:
        return os.path.getsize(path) if path else 0
    except OSError:
        return 0


def _read(path: str, limit: int = 4000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-limit:]
    except OSError:
        return ""


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def _add_veth_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--veths", type=int, metavar="N",
                   help="create N veth pairs named PREFIX1..PREFIXN")
    g.add_argument("--veth", action="append", metavar="NAME",
                   help="create a veth pair with this name (repeatable)")
    p.add_argument("--prefix", default="eth", help="name prefix for --veths (default: eth)")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="nmsandbox.py",
        description="Private NetworkManager sandboxes in network namespaces, for tests.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("start", help="create a sandbox; prints its name (or JSON with --json)")
    _add_veth_args(p)
    p.add_argument("--owner-pid", type=int,
                   help="tear the sandbox down when this process dies "
                        "(default: the caller, i.e. this command's parent)")
    p.add_argument("--no-nm", action="store_true",
                   help="namespaces and veths only: no NetworkManager, no D-Bus")
    p.add_argument("--timeout", type=float, default=None,
                   help=f"seconds to wait for NM to manage the veths "
                        f"(default {DEFAULT_TIMEOUT:g} + 0.05 per veth)")
    p.add_argument("--log-level", default="INFO",
                   help="NetworkManager log level (TRACE shows failed endpoint adds)")
    p.add_argument("--auth-polkit", choices=AUTH_POLKIT, default="false",
                   help="NetworkManager's [main] auth-polkit: false (default, anyone may "
                        "change anything), root-only (only root, as distributions ship NM "
                        "without polkit)")
    p.add_argument("--nm-root", metavar="DIR",
                   help="run the NetworkManager of this root file system (chrooted; a "
                        "directory, or a suite name under $MPTCPSTATE_NM_ROOTS, made by "
                        "scripts/nm-roots.sh) instead of the machine's (default: "
                        "$NMSANDBOX_NM_ROOT, else the machine's)")
    p.add_argument("--json", action="store_true", help="print the sandbox as a JSON object")

    p = sub.add_parser("restart-nm", help="kill the sandbox's NetworkManager (SIGKILL by "
                                          "default) and start it again")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--signal", default="KILL", choices=("KILL", "TERM"),
                   help="how to stop it (default KILL: no clean-up, as a crash)")
    p.add_argument("--timeout", type=float, default=None)

    p = sub.add_parser("stop", help="tear sandboxes down (idempotent)")
    p.add_argument("names", nargs="+", metavar="NAME")

    p = sub.add_parser("exec", help="run a command in the sandbox netns with "
                                    "DBUS_SYSTEM_BUS_ADDRESS set; exits with its status")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--peer", action="store_true", help="run in the peer namespace instead")
    p.add_argument("command", nargs="*", metavar="-- CMD...")

    p = sub.add_parser("info", help="print a sandbox as JSON (same keys as start --json)")
    p.add_argument("name", metavar="NAME")

    p = sub.add_parser("add-veths", help="add veth pairs to a running sandbox")
    p.add_argument("name", metavar="NAME")
    _add_veth_args(p)
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--json", action="store_true", help="print the new names as a JSON list")

    p = sub.add_parser("sweep", help="stop every sandbox whose owner process is dead")
    p.add_argument("--all", action="store_true", help="stop every sandbox of this harness")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("list", help="list the sandboxes of this harness")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("_supervise", help=argparse.SUPPRESS)
    p.add_argument("name")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if argv and argv[0] == "exec" and "--" in argv:
        # Everything after the first "--" is the command, untouched by argparse.
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1:]
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "start":
            names = args.veth if args.veth else None
            sb = Sandbox(names, count=args.veths, prefix=args.prefix, nm=not args.no_nm,
                         owner_pid=args.owner_pid if args.owner_pid else os.getppid(),
                         timeout=args.timeout, log_level=args.log_level,
                         auth_polkit=args.auth_polkit, nm_root=args.nm_root)
            sb.start()
            if args.json:
                print(_json.dumps(sb.info(), indent=None, sort_keys=True))
            else:
                print(sb.name)
            return 0
        if args.cmd == "restart-nm":
            sb = Sandbox.attach(args.name)
            sb.restart_nm(getattr(signal, "SIG" + args.signal), timeout=args.timeout)
            print(sb.nm_pid)
            return 0
        if args.cmd == "stop":
            for name in args.names:
                stop_sandbox(name)
            return 0
        if args.cmd == "exec":
            cmd = command or list(args.command)
            if not cmd:
                print("nmsandbox: exec: no command given", file=sys.stderr)
                return 2
            sb = Sandbox.attach(args.name)
            ns = sb.peer_netns if args.peer else sb.netns
            sys.stdout.flush()
            os.execvpe("ip", ["ip", "netns", "exec", ns] + cmd, sb.env())
        if args.cmd == "info":
            print(_json.dumps(Sandbox.attach(args.name).info(), sort_keys=True))
            return 0
        if args.cmd == "add-veths":
            sb = Sandbox.attach(args.name)
            new = sb.add_veths(args.veth if args.veth else None,
                               count=args.veths if args.veths is not None else
                               (None if args.veth else 1),
                               prefix=args.prefix, timeout=args.timeout)
            print(_json.dumps(new) if args.json else "\n".join(new))
            return 0
        if args.cmd == "sweep":
            stopped = sweep(all=args.all)
            print(_json.dumps(stopped) if args.json else "\n".join(stopped))
            return 0
        if args.cmd == "list":
            items = list_sandboxes()
            if args.json:
                print(_json.dumps(items, sort_keys=True))
            else:
                for it in items:
                    print(f"{it['name']}  {it['status']:<8} owner={it['owner_pid']}"
                          f"{'' if it['owner_alive'] else '(dead)'} nm={'up' if it['nm_alive'] else '-'}"
                          f" veths={it['veths']} netns={','.join(it['netns']) or '-'}")
            return 0
        if args.cmd == "_supervise":
            return supervise(args.name)
    except (SandboxError, subprocess.CalledProcessError, OSError) as exc:
        print(f"nmsandbox: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
