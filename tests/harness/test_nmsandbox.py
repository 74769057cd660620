"""Self-tests of the NetworkManager sandbox harness (tests/harness/nmsandbox.py).

They run a real NetworkManager, so they need root, iproute2 with `ip netns`,
dbus-daemon and NetworkManager; without those they are skipped.  Nothing runs in
the root network namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import nmsandbox  # noqa: E402
from nmsandbox import Sandbox, SandboxError  # noqa: E402

CLI = [sys.executable, os.path.join(HERE, "nmsandbox.py")]

_missing = [b for b in ("ip", "nmcli", "NetworkManager", "dbus-daemon", "unshare")
            if shutil.which(b) is None]
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or bool(_missing),
    reason=f"needs root and {', '.join(_missing) or 'nothing'} (real NetworkManager sandbox)")


def root_links() -> dict[str, dict]:
    """Links of the root network namespace: name -> (ifindex, flags, operstate, addresses)."""
    links = json.loads(subprocess.run(["ip", "-j", "addr", "show"], check=True,
                                      capture_output=True, text=True).stdout)
    return {l["ifname"]: {"ifindex": l["ifindex"], "flags": sorted(l.get("flags", [])),
                          "operstate": l.get("operstate"),
                          "addrs": sorted(a["local"] for a in l.get("addr_info", []))}
            for l in links}


def netns_list() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def cli(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    proc = subprocess.run(CLI + list(args), timeout=120, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def assert_gone(info: dict, timeout: float = 10.0) -> None:
    """The sandbox described by `info` (start --json output) left nothing behind."""
    def gone():
        return (info["netns"] not in netns_list()
                and info["peer_netns"] not in netns_list()
                and not os.path.exists(info["dir"]))
    nmsandbox.wait_for(gone, timeout=timeout, interval=0.05, what=f"{info['name']} removed")
    state = {"nm": info.get("nm_pid"), "dbus": info.get("dbus_pid"),
             "supervisor": info.get("supervisor_pid")}
    for what, pid in state.items():
        if pid:
            # The PID may linger as a zombie until PID 1 reaps it; it must not run.
            nmsandbox.wait_for(lambda: not nmsandbox._alive({"pid": pid}), timeout=timeout,
                               what=f"{what} pid {pid} gone")


@pytest.fixture(scope="module", autouse=True)
def root_namespace_unchanged():
    """Whatever the tests do, the root namespace ends as it began (eth0 untouched)."""
    if os.geteuid() != 0:
        yield
        return
    before = root_links()
    ns_before = set(netns_list())
    yield
    assert root_links() == before
    assert set(netns_list()) - ns_before - foreign_live_netns() == set()


def foreign_live_netns() -> set[str]:
    """Namespaces of sandboxes another live process owns (a second test run on the same
    machine): not this module's to have left."""
    return {ns for info in nmsandbox.list_sandboxes()
            if info["owner_alive"] and info["owner_pid"] != os.getpid()
            for ns in info["netns"]}


@pytest.fixture
def sb():
    with Sandbox(["eth1", "eth2"]) as box:
        yield box


# ---------------------------------------------------------------- no root needed

def test_dbus_config_is_private():
    text = nmsandbox.dbus_config("/tmp/x/system_bus_socket")
    assert "<user>" not in text and "<fork" not in text
    assert "servicehelper" not in text and "standard_system_servicedirs" not in text
    assert "<listen>unix:path=/tmp/x/system_bus_socket</listen>" in text
    assert f"<include>{nmsandbox.NM_DBUS_POLICY}</include>" in text
    assert "<includedir>" not in text and "pidfile" not in text


def test_nm_config():
    text = nmsandbox.nm_config("/k/system-connections")
    for line in ("plugins=keyfile", "auth-polkit=false", "dhcp=internal", "dns=none",
                 "rc-manager=unmanaged", "systemd-resolved=false", "hostname-mode=none",
                 "no-auto-default=*", "path=/k/system-connections", "enabled=false"):
        assert line in text.splitlines()


def test_parse_endpoints_text():
    eps = nmsandbox.parse_endpoints_text(
        "192.0.2.2 id 1 signal subflow dev eth1 \n2001:db8::2 id 2 backup \n")
    assert eps == [
        {"address": "192.0.2.2", "id": 1, "flags": ["signal", "subflow"], "dev": "eth1"},
        {"address": "2001:db8::2", "id": 2, "flags": ["backup"]},
    ]
    norm = nmsandbox._normalize_endpoint(
        {"address": "192.0.2.2", "id": 1, "signal": True, "subflow": True, "dev": "eth1"})
    assert norm["flags"] == ["signal", "subflow"] and norm["port"] is None


def test_names_are_checked():
    with pytest.raises(SandboxError):
        nmsandbox.stop_sandbox("eth0")
    with pytest.raises(SandboxError):
        nmsandbox.stop_sandbox("mps-1234")
    with pytest.raises(SandboxError):
        Sandbox(["this-name-is-too-long"])
    with pytest.raises(SandboxError):
        Sandbox(["eth1", "eth1"])


# ---------------------------------------------------------------- real sandboxes

@needs_root
def test_nm_manages_veths(sb):
    assert nmsandbox.NAME_RE.match(sb.name)
    assert sb.netns == f"{sb.name}-sbx" and sb.peer_netns == f"{sb.name}-peer"
    assert {sb.netns, sb.peer_netns} <= set(netns_list())
    assert sb.bus_address == f"unix:path={sb.dir}/system_bus_socket"
    assert nmsandbox._alive(sb.state["procs"]["nm"])
    assert nmsandbox._alive(sb.state["procs"]["dbus"])
    assert nmsandbox._alive(sb.state["procs"]["supervisor"])
    with open(f"/proc/{sb.nm_pid}/comm") as f:
        assert f.read().strip() == "NetworkManager"
    states = dict(line.rsplit(":", 1) for line in
                  sb.nmcli("-t", "-f", "DEVICE,STATE", "device").stdout.splitlines())
    for dev in ("eth1", "eth2"):
        assert states[dev] in ("disconnected", "connected"), states
    # The links are in the sandbox, their peers in the peer namespace, none in root.
    assert {l["ifname"] for l in sb.ip("link", "show", json=True)} >= {"lo", "eth1", "eth2"}
    peer = {l["ifname"]: l for l in sb.peer_ip("link", "show", json=True)}
    assert "UP" in peer["eth1"]["flags"] and "UP" in peer["eth2"]["flags"]
    assert "eth1" not in root_links()
    assert sb.env()["DBUS_SYSTEM_BUS_ADDRESS"] == sb.bus_address
    info = sb.info()
    for key in ("name", "netns", "peer_netns", "dir", "bus_address", "keyfile_dir", "nm_pid",
                "dbus_pid", "nm_log", "veths", "peer_veths"):
        assert key in info
    assert info["veths"] == ["eth1", "eth2"] and info["peer_veths"] == ["eth1", "eth2"]
    assert os.path.getsize(sb.nm_log) > 0


@needs_root
def test_profile_with_mptcp_flags_makes_endpoint(sb):
    assert sb.endpoints() == []
    sb.nmcli("connection", "add", "type", "ethernet", "ifname", "eth1", "con-name", "mp1",
             "ipv4.method", "manual", "ipv4.addresses", "192.0.2.2/24",
             "ipv6.method", "disabled", "connection.mptcp-flags", "0x38")
    assert sb.nmcli("-g", "connection.mptcp-flags", "connection", "show",
                    "mp1").stdout.strip() == "0x38"
    assert os.path.exists(os.path.join(sb.keyfile_dir, "mp1.nmconnection"))
    sb.nmcli("connection", "up", "mp1")
    eps = sb.wait_for(lambda: [e for e in sb.endpoints() if e["address"] == "192.0.2.2"],
                      timeout=10, what="NM's endpoint for 192.0.2.2")
    assert len(eps) == 1
    assert eps[0]["flags"] == ["signal", "subflow"] and eps[0]["dev"] == "eth1"
    # The library runs in the sandbox netns: ip there sees the address too.
    out = sb.run(["ip", "-j", "addr", "show", "dev", "eth1"]).stdout
    assert "192.0.2.2" in out
    # And the kernel of the *root* namespace has no endpoint of ours.
    root_eps = subprocess.run(["ip", "mptcp", "endpoint", "show"], capture_output=True,
                              text=True).stdout
    assert "192.0.2.2" not in root_eps


@needs_root
def test_run_env_and_errors(sb):
    out = sb.run("echo $DBUS_SYSTEM_BUS_ADDRESS; cat /proc/sys/net/mptcp/enabled").stdout
    assert out.split() == [sb.bus_address, "1"]
    with pytest.raises(subprocess.CalledProcessError) as ei:
        sb.run(["sh", "-c", "echo boom >&2; exit 3"])
    assert ei.value.returncode == 3 and "boom" in str(ei.value)
    assert sb.run(["false"], check=False).returncode == 1


@needs_root
def test_add_veths_after_start(sb):
    assert sb.add_veths(["eth3"]) == ["eth3"]
    assert sb.add_veths(count=1) == ["eth4"]
    assert sb.veths == ["eth1", "eth2", "eth3", "eth4"]
    states = dict(line.rsplit(":", 1) for line in
                  sb.nmcli("-t", "-f", "DEVICE,STATE", "device").stdout.splitlines())
    assert states["eth3"] == "disconnected" and states["eth4"] == "disconnected"
    assert nmsandbox.read_state(sb.name)["veths"] == sb.veths


@needs_root
def test_stop_removes_everything_and_is_idempotent():
    before = root_links()
    box = Sandbox(["eth1"]).start()
    info = box.info()
    assert {info["netns"], info["peer_netns"]} <= set(netns_list())
    box.stop()
    assert_gone(info, timeout=1.0)
    box.stop()                              # again: fine
    nmsandbox.stop_sandbox(info["name"])    # by name: fine
    cli("stop", info["name"])               # from the CLI: fine
    assert root_links() == before


COOKIE_SCRIPT = ("import socket, struct; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
                 "print(struct.unpack('Q', s.getsockopt(socket.SOL_SOCKET, 71, 8))[0])")


@needs_root
def test_netns_cookie_and_stop_removes_idle_record_dirs():
    """netns_cookie reads the cookie a process inside the namespace sees (and the root
    namespace's stays the caller's); stop removes mptcpstate's directory of a namespace
    that holds only its lock, and keeps one that holds a record."""
    box = Sandbox(["eth1"]).start()
    try:
        cookies = {}
        for ns in (box.netns, box.peer_netns):
            inside = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c",
                                     COOKIE_SCRIPT], check=True, capture_output=True,
                                    text=True).stdout.strip()
            cookies[ns] = nmsandbox.netns_cookie(ns)
            assert cookies[ns] == int(inside)
        assert cookies[box.netns] != cookies[box.peer_netns]
        own = subprocess.run([sys.executable, "-c", COOKIE_SCRIPT], check=True,
                             capture_output=True, text=True).stdout.strip()
        assert int(own) not in cookies.values()
        run = nmsandbox.MPTCPSTATE_RUN_DIR
        idle = os.path.join(run, str(cookies[box.netns]))
        busy = os.path.join(run, str(cookies[box.peer_netns]))
        for d in (idle, busy):
            os.makedirs(d, exist_ok=True)
            open(os.path.join(d, "lock"), "w").close()
        record = os.path.join(busy, "kernel-1.json")
        open(record, "w").close()
    finally:
        box.stop()
    try:
        assert not os.path.exists(idle)
        assert os.path.exists(record)
    finally:
        shutil.rmtree(busy, ignore_errors=True)


@needs_root
def test_context_manager_stops_on_exception():
    with pytest.raises(ZeroDivisionError):
        with Sandbox() as box:
            info = box.info()
            assert info["veths"] == ["eth1"]
            1 / 0
    assert_gone(info, timeout=1.0)


@needs_root
def test_owner_killed_supervisor_cleans_up():
    owner = subprocess.Popen(["sleep", "600"])
    try:
        # Started from a child process (the CLI), owned by `sleep`.
        info = json.loads(cli("start", "--veths", "2", "--owner-pid", str(owner.pid),
                              "--json").stdout)
        assert info["veths"] == ["eth1", "eth2"]
        assert info["owner_pid"] == owner.pid
        assert {info["netns"], info["peer_netns"]} <= set(netns_list())
        assert nmsandbox._alive({"pid": info["nm_pid"]})
        # The CLI has exited; the sandbox lives on while its owner lives.
        time.sleep(0.5)
        assert info["netns"] in netns_list()
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert_gone(info, timeout=10.0)


@needs_root
def test_half_failed_start_cleans_up(monkeypatch):
    monkeypatch.setattr(nmsandbox, "NM_BIN", "false")  # "NetworkManager" exits at once
    before = set(netns_list())
    with pytest.raises(SandboxError) as ei:
        Sandbox(["eth1"], timeout=10).start()
    assert "NetworkManager" in str(ei.value)
    assert set(netns_list()) == before
    assert not [s for s in nmsandbox.list_sandboxes() if s["status"] == "starting"]


@needs_root
def test_no_nm_mode():
    with Sandbox(["eth1", "eth2"], nm=False) as box:
        info = box.info()
        assert info["nm_pid"] is None and info["dbus_pid"] is None
        assert info["bus_address"] is None
        assert "DBUS_SYSTEM_BUS_ADDRESS" not in box.env()
        links = {l["ifname"]: l for l in box.ip("link", "show", json=True)}
        assert "UP" in links["eth1"]["flags"]
        box.wait_for(lambda: "LOWER_UP" in box.ip("link", "show", "eth1", json=True)[0]["flags"],
                     timeout=5)
        # Kernel-only MPTCP work in the sandbox namespace.
        box.ip("addr", "add", "192.0.2.9/24", "dev", "eth1")
        box.ip("mptcp", "endpoint", "add", "192.0.2.9", "dev", "eth1", "signal")
        eps = box.endpoints()
        assert [(e["address"], e["flags"], e["dev"]) for e in eps] == \
            [("192.0.2.9", ["signal"], "eth1")]
        assert box.mptcp_limits()["subflows"] == 2
        with pytest.raises(SandboxError):
            box.nmcli("device")
    assert_gone(info, timeout=1.0)


@needs_root
def test_cli_start_exec_info_list_stop():
    info = json.loads(cli("start", "--veth", "wan0", "--veth", "wan1", "--json",
                          "--owner-pid", str(os.getpid())).stdout)
    try:
        assert info["veths"] == ["wan0", "wan1"]
        assert json.loads(cli("info", info["name"]).stdout)["nm_pid"] == info["nm_pid"]
        assert info["name"] in [s["name"] for s in json.loads(cli("list", "--json").stdout)]
        out = cli("exec", info["name"], "--", "sh", "-c",
                  "echo $DBUS_SYSTEM_BUS_ADDRESS; ip -br link show wan0").stdout.splitlines()
        assert out[0] == info["bus_address"] and out[1].startswith("wan0")
        # exit status of the command is the exit status of exec
        assert cli("exec", info["name"], "--", "sh", "-c", "exit 7", check=False).returncode == 7
        # nmcli works from the root namespace through the private bus
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=info["bus_address"])
        dev = subprocess.run(["nmcli", "-t", "-f", "DEVICE,STATE", "device"], env=env,
                             capture_output=True, text=True, check=True).stdout
        assert "wan0:disconnected" in dev.splitlines()
        assert json.loads(cli("add-veths", info["name"], "--veth", "wan2", "--json").stdout) \
            == ["wan2"]
        assert cli("exec", info["name"], "--peer", "--", "ip", "-br", "link", "show",
                   "wan2").stdout.startswith("wan2")
    finally:
        cli("stop", info["name"])
    assert_gone(info, timeout=1.0)
    cli("stop", info["name"])  # idempotent


@needs_root
def test_sweep_stops_only_dead_owners(sb):
    owner = subprocess.Popen(["sleep", "600"])
    info = json.loads(cli("start", "--no-nm", "--owner-pid", str(owner.pid), "--json").stdout)
    # Kill the supervisor first, so that only sweep can clean up.
    os.kill(info["supervisor_pid"], signal.SIGKILL)
    nmsandbox.wait_for(lambda: not nmsandbox._alive({"pid": info["supervisor_pid"]}), 5)
    owner.kill()
    owner.wait()
    time.sleep(0.3)
    assert info["netns"] in netns_list()
    swept = json.loads(cli("sweep", "--json").stdout)
    assert info["name"] in swept
    assert sb.name not in swept            # our own sandbox: owner (this process) alive
    assert sb.netns in netns_list()
    assert_gone(info, timeout=1.0)


@needs_root
def test_thousand_veths():
    t0 = time.monotonic()
    with Sandbox(count=1000, timeout=120) as box:
        started = time.monotonic() - t0
        assert len(box.veths) == 1000 and box.veths[-1] == "eth1000"
        states = [line.rsplit(":", 1)[1] for line in
                  box.nmcli("-t", "-f", "DEVICE,STATE", "device").stdout.splitlines()]
        assert states.count("disconnected") == 1000
        assert len(box.peer_ip("link", "show", json=True)) == 1001
        info = box.info()
    print(f"\n1000 veths: start {started:.1f} s, total {time.monotonic() - t0:.1f} s")
    assert_gone(info, timeout=5.0)


# ------------------------------------------------- a NetworkManager from another root

#: The roots scripts/nm-roots.sh builds (scripts/test.sh builds them before pytest).
NM_SUITES = ("trixie", "sid")


def nm_root_or_skip(suite: str) -> str:
    try:
        return nmsandbox.resolve_nm_root(suite)
    except SandboxError as exc:
        pytest.skip(f"{exc}")


def root_mounts(root: str) -> list[str]:
    """This mount namespace's mounts in or of the root (the harness makes its own in
    NM's private mount namespace only)."""
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return [line for line in f.read().splitlines()
                if root in line or "nmsandbox-" in line]


@needs_root
def test_machine_nm_version_is_read_from_the_bus():
    """Without a root: the machine's NetworkManager, its version read on the bus and
    equal to what its binary prints."""
    with Sandbox(["eth1"], nm_root="") as box:
        binary = subprocess.run(["NetworkManager", "--version"], capture_output=True,
                                text=True, check=True).stdout.strip()
        assert box.nm_root is None and box.info()["nm_root"] is None
        assert box.nm_version == binary == box.info()["nm_version"]
        assert os.readlink(f"/proc/{box.nm_pid}/root") == "/"


@needs_root
@pytest.mark.parametrize("suite", NM_SUITES)
def test_nm_from_a_root(suite):
    """NetworkManager run chrooted in a root made by scripts/nm-roots.sh: it is that
    root's binary (its /proc/PID/root, exe and version), its version on the bus is what
    that binary prints and not the machine's, it manages the veths on the private bus,
    a profile gives its endpoint, a restart keeps the root, and none of its mounts
    shows outside its mount namespace."""
    root = nm_root_or_skip(suite)
    machine = subprocess.run(["NetworkManager", "--version"], capture_output=True,
                             text=True, check=True).stdout.strip()
    binary = nmsandbox.nm_binary_version(root)
    with Sandbox(["eth1", "eth2"], nm_root=root) as box:
        assert box.nm_root == root and box.info()["nm_root"] == root
        assert box.nm_version == binary != machine, (box.nm_version, binary, machine)
        assert os.readlink(f"/proc/{box.nm_pid}/root") == root
        assert os.readlink(f"/proc/{box.nm_pid}/exe") == f"{root}/usr/sbin/NetworkManager"
        with open(box.nm_log, encoding="utf-8", errors="replace") as f:
            assert f"NetworkManager (version {binary})" in f.read()
        states = dict(line.rsplit(":", 1) for line in
                      box.nmcli("-t", "-f", "DEVICE,STATE", "device").stdout.splitlines())
        assert states["eth1"] == states["eth2"] == "disconnected", states
        box.nmcli("connection", "add", "type", "ethernet", "ifname", "eth1", "con-name", "mp1",
                  "ipv4.method", "manual", "ipv4.addresses", "192.0.2.2/24",
                  "ipv6.method", "disabled", "connection.mptcp-flags", "0x38")
        # The keyfile is where the machine-side harness looks: the same path inside.
        assert os.path.exists(os.path.join(box.keyfile_dir, "mp1.nmconnection"))
        box.nmcli("connection", "up", "mp1")
        eps = box.wait_for(lambda: [e for e in box.endpoints() if e["address"] == "192.0.2.2"],
                           timeout=10, what="NM's endpoint for 192.0.2.2")
        assert eps[0]["flags"] == ["signal", "subflow"] and eps[0]["dev"] == "eth1"
        assert root_mounts(root) == []
        # ... where NM's own mount namespace has them (as NM sees them, from inside its
        # root), /sys read-only.
        with open(f"/proc/{box.nm_pid}/mounts", encoding="utf-8") as f:
            nm_mounts = {m.split()[1]: m.split()[3].split(",") for m in f.read().splitlines()}
        assert "ro" in nm_mounts["/sys"], nm_mounts
        for path in ("/proc", "/dev", "/run", "/run/NetworkManager", "/etc/NetworkManager",
                     "/var/lib/NetworkManager", box.dir):
            assert path in nm_mounts, (path, sorted(nm_mounts))
        old = box.nm_pid
        box.restart_nm()
        assert box.nm_pid != old and os.readlink(f"/proc/{box.nm_pid}/root") == root
        assert box.nm_version == binary
        info = json.loads(cli("info", box.name).stdout)
        assert info["nm_root"] == root and info["nm_version"] == binary
    assert root_mounts(root) == []


@needs_root
def test_cli_start_with_nm_root():
    """`start --nm-root SUITE --json`: the root resolved under the roots' directory, its
    version in the JSON."""
    root = nm_root_or_skip(NM_SUITES[-1])
    info = json.loads(cli("start", "--nm-root", NM_SUITES[-1], "--json",
                          "--owner-pid", str(os.getpid())).stdout)
    try:
        assert info["nm_root"] == root
        assert info["nm_version"] == nmsandbox.nm_binary_version(root)
    finally:
        cli("stop", info["name"])
    assert_gone(info)


def test_unfinished_root_is_refused(tmp_path):
    """A root without the mark scripts/nm-roots.sh writes last (a build cut short) is
    refused, naming the script; so is a finished one without NetworkManager."""
    with pytest.raises(SandboxError, match="not a finished NetworkManager root.*nm-roots.sh"):
        Sandbox(["eth1"], nm_root=str(tmp_path))
    (tmp_path / nmsandbox.NM_ROOT_DONE).touch()
    with pytest.raises(SandboxError, match="holds no usr/sbin/NetworkManager"):
        Sandbox(["eth1"], nm_root=str(tmp_path))


def test_version_tuple():
    assert nmsandbox.version_tuple("1.58.1") == (1, 58, 1)
    assert nmsandbox.version_tuple("1.42.4") < nmsandbox.version_tuple("1.52.1")
    assert nmsandbox.version_tuple("1.57.2-dev") == (1, 57, 2)
    with pytest.raises(SandboxError):
        nmsandbox.version_tuple("")
