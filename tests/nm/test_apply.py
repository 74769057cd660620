"""apply against a real NetworkManager and kernel, through every face.

The scenarios are one table, tests/fixtures/apply/cases.json, run through the CLI, the
Python package and the C library (tests/nm/faces.py). Scenarios that watch the system
while an apply runs (link bounce, a verification failure made for real, disjoint applies)
follow the table, through the CLI.
"""
from __future__ import annotations

import fnmatch
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time

import pytest

from nmsandbox import Sandbox, netns_cookie

import faces

ROOT = pathlib.Path(__file__).resolve().parents[2]
TABLE = json.loads((ROOT / "tests" / "fixtures" / "apply" / "cases.json").read_text())
CASES = {c["name"]: c for c in TABLE["cases"]}
SEED = (ROOT / "tests" / "fixtures" / "seed.yml").read_text()

# The DHCP case's server: a dnsmasq in the peer namespace.
PEER_V4, PEER_V6 = "198.51.100.1/24", "2001:db8:5::1/64"


def make_face(name: str, cli: str) -> faces.Face | None:
    if name == "cli":
        return faces.CliFace(cli)
    if name == "python":
        return faces.python_face()
    if name == "c":
        c = faces.c_face()
        if c is None and os.environ.get("MPTCPSTATE_REQUIRE_NM"):
            pytest.fail("tests/c/build/apply_face is missing: run `make -C tests/c`")
        return c
    raise AssertionError(f"MPTCPSTATE_FACES: no face {name!r} (cli, python, c)")


# MPTCPSTATE_FACES (comma-separated) narrows them: scripts/test.sh runs every face on the
# machine's NetworkManager and the table through the CLI alone on the newer ones (what
# differs there is NetworkManager, and the faces are proven equal on the first).
FACE_NAMES = [f for f in os.environ.get("MPTCPSTATE_FACES", "cli,python,c").split(",") if f]


@pytest.fixture(params=FACE_NAMES)
def face(request, cli):
    f = make_face(request.param, cli)
    if f is None:
        pytest.skip(f"no {request.param} face built")
    return f


# --- what the system holds -------------------------------------------------------------

def endpoint_lines(sb: Sandbox) -> list[str]:
    return sorted(
        f"{e['address']} {','.join(f for f in e['flags'] if f != 'implicit')} {e['dev']}"
        for e in sb.endpoints()
        if "implicit" not in e["flags"]
    )


def profile_uuids(sb: Sandbox) -> list[str]:
    out = sb.nmcli("-t", "-f", "UUID", "connection", "show").stdout
    return sorted(line for line in out.splitlines() if line)


PROFILE_FIELDS = ("connection.id,connection.uuid,connection.interface-name,"
                  "connection.autoconnect,connection.mptcp-flags,ipv4.method,ipv4.addresses,"
                  "ipv6.method,ipv6.addresses")


def mptcp_enabled(sb: Sandbox) -> str:
    return sb.run(["sysctl", "-n", "net.mptcp.enabled"]).stdout.strip()


HOST_SYSCTLS = ("net.mptcp.enabled", "net.mptcp.path_manager", "net.mptcp.scheduler")


def host_knobs(sb: Sandbox) -> dict:
    """The host knobs apply writes: net.mptcp.{enabled,path_manager,scheduler}."""
    out = sb.run(["sysctl", "-e", *HOST_SYSCTLS]).stdout
    return dict(line.split(" = ", 1) for line in out.splitlines() if " = " in line)


def kernel_addresses(sb: Sandbox) -> list:
    """Every link's addresses as `ip -j addr` prints them (flags, scope, lifetimes), and
    the links' state; temporary/dynamic lifetimes left out (they count down)."""
    out = []
    for link in sb.ip("addr", "show", json=True):
        addrs = [{k: v for k, v in a.items() if k not in ("valid_life_time", "preferred_life_time")}
                 for a in link.get("addr_info", [])]
        out.append((link["ifname"], link.get("operstate"), sorted(link.get("flags", [])),
                    sorted(addrs, key=lambda a: (a["family"], a["local"]))))
    return out


def snapshot(sb: Sandbox, *, endpoints: bool = True) -> dict:
    """NM's profiles (keyfiles byte for byte, and what NM holds in memory), devices, NM's
    checkpoints, the kernel's links and addresses, its endpoints, and the host knobs (MPTCP
    limits, net.mptcp.enabled, path manager, scheduler)."""
    keyfiles = {p.name: p.read_bytes() for p in sorted(pathlib.Path(sb.keyfile_dir).iterdir())}
    profiles = {
        uuid: sb.nmcli("-t", "-f", PROFILE_FIELDS, "connection", "show", uuid).stdout
        for uuid in profile_uuids(sb)
    }
    snap = {
        "keyfiles": keyfiles,
        "profiles": profiles,
        "devices": sb.nmcli("-t", "-f", "DEVICE,STATE,CONNECTION", "device").stdout,
    }
    if endpoints:
        snap["endpoints"] = endpoint_lines(sb)
        # Addresses come and go with endpoints' profiles; where endpoints are left out
        # (DHCP leases renewing), so are they.
        snap["addresses"] = kernel_addresses(sb)
    snap["limits"] = sb.mptcp_limits()
    snap["mptcp_enabled"] = mptcp_enabled(sb)
    snap["knobs"] = host_knobs(sb)
    snap["checkpoints"] = checkpoints(sb)
    return snap


RUN_DIR = pathlib.Path("/run/mptcpstate")


def record_dir(sb: Sandbox) -> pathlib.Path:
    """The library's undo-record directory of the sandbox's namespace (named by its
    cookie, SO_NETNS_COOKIE)."""
    return RUN_DIR / str(netns_cookie(sb.netns))


def pending_records(sb: Sandbox) -> list[str]:
    """The undo records pending in the sandbox's namespace (paths)."""
    d = record_dir(sb)
    if not d.is_dir():
        return []
    return sorted(str(p) for p in d.iterdir()
                  if p.name.startswith("checkpoint-") and p.name.endswith(".json"))


def record_files(sb: Sandbox) -> list[str]:
    """Every undo record of the namespace, pending or claimed by a commit, a rollback or
    the timer at work on it (`<record>.claimed-<pid>`)."""
    d = record_dir(sb)
    return sorted(p.name for p in d.iterdir() if p.name.startswith("checkpoint-")) \
        if d.is_dir() else []


def checkpoints(sb: Sandbox) -> list[str]:
    out = subprocess.run(
        ["busctl", f"--address={sb.bus_address}", "get-property",
         "org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager",
         "org.freedesktop.NetworkManager", "Checkpoints"],
        capture_output=True, text=True, check=True).stdout.split()
    return [w.strip('"') for w in out[2:]]


def nm_log_checkpoint_lines(sb: Sandbox) -> int:
    """Lines of NetworkManager's log (--debug) that speak of a checkpoint: a checkpoint
    created and destroyed within a step leaves them, where the list of checkpoints does
    not."""
    with open(sb.nm_log, encoding="utf-8", errors="replace") as f:
        return sum("checkpoint" in line.lower() for line in f)


def profile_field(sb: Sandbox, name: str, field: str) -> str:
    return sb.nmcli("-g", field, "connection", "show", name).stdout.strip()


def addresses(sb: Sandbox, dev: str) -> list[str]:
    return [a["local"] for link in sb.ip("addr", "show", "dev", dev, json=True)
            for a in link.get("addr_info", [])]


def match_all(patterns: list[str], values: list[str]) -> bool:
    """Each pattern matches exactly one value and nothing is left over."""
    left = list(values)
    for p in patterns:
        hit = next((v for v in left if fnmatch.fnmatchcase(v, p)), None)
        if hit is None:
            return False
        left.remove(hit)
    return not left


# --- the table -------------------------------------------------------------------------

def start_dhcp_server(sb: Sandbox) -> subprocess.Popen:
    peer = sb.peer_veths[0]
    sb.peer_ip("addr", "add", PEER_V4, "dev", peer)
    sb.peer_ip("addr", "add", PEER_V6, "dev", peer, "nodad")
    lease = os.path.join(sb.dir, "dnsmasq.leases")
    return subprocess.Popen(
        ["ip", "netns", "exec", sb.peer_netns, "dnsmasq", "--keep-in-foreground",
         "--conf-file=/dev/null", "--port=0", "--bind-interfaces", f"--interface={peer}",
         "--dhcp-range=198.51.100.10,198.51.100.50,255.255.255.0,1h",
         "--dhcp-range=2001:db8:5::,ra-only,64", "--enable-ra", "--ra-param=*,3",
         f"--dhcp-leasefile={lease}", "--pid-file="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_expect(sb: Sandbox, expect: dict, result: faces.Result, before: dict,
                 snap: dict | None, last_cp: str | None, where: str,
                 nm_cp_lines: int | None = None) -> None:
    kind = expect.get("kind")
    assert result.kind == kind, f"{where}: {result}"
    for text in expect.get("msg", []):
        text = text.replace("$checkpoint", last_cp or "<none>")
        assert text in result.msg, f"{where}: {text!r} not in {result.msg!r}"
    want_cp = expect.get("checkpoint")
    if want_cp == "record":
        # A record of this library in the sandbox's namespace, not NM's checkpoint.
        cp = result.checkpoint or ""
        assert cp.startswith(f"{record_dir(sb)}/checkpoint-") and cp.endswith(".json"), \
            f"{where}: {result}"
        assert (os.stat(cp).st_mode & 0o777) == 0o600, f"{where}: {oct(os.stat(cp).st_mode)}"
    elif want_cp:
        assert result.checkpoint and result.checkpoint.startswith(
            "/org/freedesktop/NetworkManager/Checkpoint/"), f"{where}: {result}"
    elif kind is None and "checkpoint" in expect:
        assert result.checkpoint is None, f"{where}: {result}"
    if "records" in expect:
        assert len(pending_records(sb)) == expect["records"], f"{where}: {pending_records(sb)}"
    if "limits" in expect:
        assert sb.mptcp_limits() == expect["limits"], f"{where}: limits {sb.mptcp_limits()}"
    for key, value in expect.get("sysctls", {}).items():
        got = sb.run(["sysctl", "-n", key]).stdout.strip()
        assert got == value, f"{where}: {key} = {got!r}, want {value!r}"
    if expect.get("timer_log"):
        # The timer writes its log once it has removed the record.
        texts = [t.replace("$checkpoint", last_cp or "<none>") for t in expect["timer_log"]]
        log = record_dir(sb) / "timer.log"
        sb.wait_for(lambda: all(t in log.read_text() for t in texts), timeout=5,
                    what=f"{texts} in {log}")
    for dev, patterns in expect.get("addresses", {}).items():
        # A reapply restarts IPv6 autoconf: the SLAAC address returns with the next
        # router advertisement (dnsmasq sends one every 3 s here).
        sb.wait_for(lambda: all(any(fnmatch.fnmatchcase(a, p) for a in addresses(sb, dev))
                                for p in patterns),
                    timeout=10, what=f"{dev} addresses {patterns}")
    if "endpoints" in expect:
        want = expect["endpoints"]
        got = sb.wait_for(lambda: (lambda e: e if match_all(want, e) else None)(endpoint_lines(sb)),
                          timeout=2, what=f"endpoints {want}") if want else endpoint_lines(sb)
        assert match_all(want, got), f"{where}: endpoints {got}, want {want}"
    if expect.get("untouched"):
        assert snapshot(sb) == before, f"{where}: the system changed"
    if expect.get("same_as_snapshot"):
        assert snap is not None
        try:
            sb.wait_for(lambda: snapshot(sb) == snap, timeout=5,
                        what="the state before the checkpoint")
        except TimeoutError:
            now = snapshot(sb)
            diff = {k: (snap.get(k), now.get(k)) for k in snap if snap.get(k) != now.get(k)}
            raise AssertionError(f"{where}: not the state before the checkpoint: "
                                 f"(before, now) {diff}") from None
    for name, fields in expect.get("profiles", {}).items():
        for field, value in fields.items():
            assert profile_field(sb, name, field).startswith(value), \
                f"{where}: {name} {field} = {profile_field(sb, name, field)!r}, want {value!r}"
    for name in expect.get("no_profile", []):
        names = sb.nmcli("-t", "-f", "NAME", "connection", "show").stdout.split()
        assert name not in names, f"{where}: profile {name} still there"
    for dev, state in expect.get("devices", {}).items():
        got = sb.nmcli("-g", "GENERAL.STATE", "device", "show", dev).stdout
        assert state in got, f"{where}: {dev} is {got!r}"
    if "checkpoints" in expect:
        assert len(checkpoints(sb)) == expect["checkpoints"], f"{where}: {checkpoints(sb)}"
    if expect.get("no_checkpoint_made"):
        assert nm_cp_lines is not None
        assert nm_log_checkpoint_lines(sb) == nm_cp_lines, \
            f"{where}: NetworkManager's log speaks of a checkpoint made during the step"
    if "keyfiles" in expect:
        files = sorted(p.name for p in pathlib.Path(sb.keyfile_dir).iterdir())
        assert match_all(expect["keyfiles"], files), f"{where}: keyfiles {files}"


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_table(case, face, require_nm):
    spec = CASES[case]
    records = None
    try:
        with Sandbox(spec["veths"]) as sb:
            records = record_dir(sb)
            server = start_dhcp_server(sb) if spec.get("dhcp_server") else None
            try:
                run_case(sb, spec, face)
            finally:
                if server:
                    stop(server)
                left = roll_back_records(sb, face)
            assert not left, f"undo records left pending (rolled back now): {left}"
    finally:
        if records is not None:
            shutil.rmtree(records, ignore_errors=True)


# Errors a dry run meets as the apply does (found before anything is written); the
# others (Verification, Timeout, ...) come from the writes and their checking.
# (Busy through NetworkManager is NM's answer to the checkpoint, made after planning.)
PLANNED_ERRORS = {"InvalidArgument", "NotSupported"}


def dry_run_first(sb: Sandbox, spec: dict, step: dict, face: faces.Face, state: str,
                  before: dict, nm_cp_lines: int | None, where: str,
                  opts: dict) -> faces.Result:
    """Before each apply step: the same state as a dry run through the same face. It
    writes nothing (the snapshot, the undo records and NetworkManager's checkpoint log
    are as before), and fails where the apply fails before writing."""
    records = pending_records(sb)
    dry = face.apply(sb, state, dry_run=True, no_commit=opts.get("no_commit", False),
                     timeout=opts.get("timeout"), memory_only=opts.get("memory_only", False))
    assert dry.checkpoint is None, f"{where}: dry run: {dry}"
    # The whole snapshot through the CLI (it costs NetworkManager a query per profile);
    # the other faces pass the same flag to the same core: their keyfiles, kernel side
    # and NetworkManager's checkpoint log (below) are checked.
    if spec.get("dhcp_server"):
        pass
    elif face.name == "cli":
        was, now = without_dad(before), without_dad(snapshot(sb))
        diff = {k: (was.get(k), now.get(k)) for k in now if was.get(k) != now.get(k)}
        assert not diff, f"{where}: the dry run changed the system: (before, after) {diff}"
    else:
        was = without_dad(before)
        keyfiles = {p.name: p.read_bytes()
                    for p in sorted(pathlib.Path(sb.keyfile_dir).iterdir())}
        now = without_dad({"keyfiles": keyfiles, "endpoints": endpoint_lines(sb),
                           "addresses": kernel_addresses(sb)})
        diff = {k: (was.get(k), now.get(k)) for k in now if was.get(k) != now.get(k)}
        assert not diff, f"{where}: the dry run changed the system: (before, after) {diff}"
    assert pending_records(sb) == records, f"{where}: the dry run left a record"
    if nm_cp_lines is not None:
        assert nm_log_checkpoint_lines(sb) == nm_cp_lines, \
            f"{where}: NetworkManager's log speaks of a checkpoint made by the dry run"
    faces.check_dry_run_result(dry, step_expect(sb, step).get("kind"), PLANNED_ERRORS, where)
    return dry


def without_dad(snap: dict) -> dict:
    """A snapshot without the kernel's progress through duplicate address detection
    (`tentative` ends a second or two after an address came, whatever else happens)."""
    out = dict(snap)
    if "addresses" in snap:
        out["addresses"] = [(name, oper, flags, [{k: v for k, v in a.items() if k != "tentative"}
                                                 for a in addrs])
                            for name, oper, flags, addrs in snap["addresses"]]
    return out


def plan_shape(plan: dict) -> tuple:
    return ([(i["name"], i["actions"]) for i in plan["interfaces"]], plan["host"])


def check_plan(sb: Sandbox, spec: dict, dry: faces.Result, result: faces.Result,
               before: dict, where: str) -> None:
    """A successful apply returns the plan its dry run gave (empty exactly when it
    wrote nothing)."""
    if result.kind is not None or dry.kind is not None:
        return
    assert result.plan is not None, f"{where}: no plan: {result}"
    if spec.get("dhcp_server"):
        # Leases and router advertisements move the addresses' `before` between the two.
        assert plan_shape(dry.plan) == plan_shape(result.plan), \
            f"{where}: dry run {dry.plan}, apply {result.plan}"
    else:
        assert dry.plan == result.plan, f"{where}: dry run {dry.plan}, apply {result.plan}"
        if faces.is_empty_plan(result.plan):
            assert without_dad(snapshot(sb)) == without_dad(before), \
                f"{where}: an empty plan, yet the system changed"
    if faces.is_empty_plan(result.plan):
        assert result.checkpoint is None, f"{where}: an empty plan left {result.checkpoint}"


def roll_back_records(sb: Sandbox, face: faces.Face) -> list[str]:
    """Rolls back the records a case left pending (a failed case); returns them."""
    left = pending_records(sb)
    for path in left:
        face.rollback(sb, path)
    return left


def nm_version_matches(key: str, version: tuple[int, ...]) -> bool:
    """`>=1.56` or `<1.56` against the sandbox's NetworkManager version."""
    m = re.fullmatch(r"(>=|<)(\d+(?:\.\d+)*)", key)
    assert m, f"expect_nm: not a version key: {key!r}"
    bound = tuple(int(x) for x in m.group(2).split("."))
    return version >= bound if m.group(1) == ">=" else version < bound


def step_expect(sb: Sandbox, step: dict) -> dict:
    """The step's expect, or where NetworkManager versions differ (expect_nm), the one for
    the version the sandbox's NetworkManager reports."""
    hits = [e for key, e in step.get("expect_nm", {}).items()
            if nm_version_matches(key, sb.nm_version_tuple())]
    assert len(hits) <= 1, f"expect_nm: more than one key matches {sb.nm_version}"
    return hits[0] if hits else step.get("expect", {})


def run_case(sb: Sandbox, spec: dict, face: faces.Face) -> None:
    snap = None
    last_cp = None
    for line in spec.get("setup", []):
        sb.run(line)
    for i, step in enumerate(spec["steps"]):
        where = f"{spec['name']} step {i} ({face.name})"
        if step.get("snapshot"):
            snap = snapshot(sb)
            continue
        before = snapshot(sb)
        nm_cp_lines = nm_log_checkpoint_lines(sb)
        if "apply" in step:
            opts = step.get("opts", {})
            state = json.dumps(step["apply"])
            dry = dry_run_first(sb, spec, step, face, state, before, nm_cp_lines, where, opts)
            result = face.apply(sb, state,
                                no_commit=opts.get("no_commit", False),
                                timeout=opts.get("timeout"),
                                memory_only=opts.get("memory_only", False),
                                plan=True)
            check_plan(sb, spec, dry, result, before, where)
            if result.checkpoint:
                last_cp = result.checkpoint
        elif "commit" in step or "rollback" in step:
            verb = "commit" if "commit" in step else "rollback"
            arg = step[verb]
            arg = last_cp if arg == "$checkpoint" else arg
            result = getattr(face, verb)(sb, arg)
        elif "wait_rolled_back" in step:
            sb.wait_for(lambda: not checkpoints(sb) and not record_files(sb),
                        timeout=step["wait_rolled_back"],
                        what="the rollback by NetworkManager's or the library's timer")
            result = faces.Result(0, None, "", None)
        else:
            raise AssertionError(f"{where}: unknown step {step}")
        check_expect(sb, step_expect(sb, step), result, before, snap, last_cp, where,
                     nm_cp_lines)


# --- watched while applying (CLI) ------------------------------------------------------

def applied_version(sb: Sandbox, dev: str) -> int:
    """The version id of the device's applied connection (each reapply raises it)."""
    bus = f"--address={sb.bus_address}"
    path = subprocess.run(
        ["busctl", bus, "call", "org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager",
         "org.freedesktop.NetworkManager", "GetDeviceByIpIface", "s", dev],
        capture_output=True, text=True, check=True).stdout.split()[1].strip('"')
    out = subprocess.run(
        ["busctl", bus, "call", "org.freedesktop.NetworkManager", path,
         "org.freedesktop.NetworkManager.Device", "GetAppliedConnection", "u", "0"],
        capture_output=True, text=True, check=True).stdout.split()
    return int(out[-1])


def cli_apply(sb: Sandbox, cli: str, state: str, *args: str):
    return sb.run([cli, "-v", "apply", "-", *args], input=state, check=False, timeout=300)


def test_show_output_applied_back_changes_nothing(cli, require_nm):
    """`show`'s whole output (loopback, a DHCP-less eth2 made by nmcli, the seed on eth1)
    applied back: no profile write, no reapply, no checkpoint."""
    with Sandbox(["eth1", "eth2"]) as sb:
        assert cli_apply(sb, cli, SEED).returncode == 0
        sb.nmcli("connection", "add", "type", "ethernet", "ifname", "eth2", "con-name", "other",
                 "ipv4.method", "manual", "ipv4.addresses", "198.51.100.7/24",
                 "ipv6.method", "manual", "ipv6.addresses", "2001:db8:7::7/64",
                 "connection.mptcp-flags", "0x28")
        sb.nmcli("connection", "up", "other")
        sb.wait_for(lambda: len(endpoint_lines(sb)) == 3, what="3 endpoints")
        # Until IPv6 duplicate address detection ends, an address is not there yet.
        sb.wait_for(lambda: not sb.ip("-6", "addr", "show", "tentative").strip(),
                    what="IPv6 duplicate address detection")
        shown = sb.run([cli, "show"]).stdout
        before = snapshot(sb)
        versions = {d: applied_version(sb, d) for d in ("eth1", "eth2")}
        cps_before = sb.run(["sh", "-c", f"grep -c 'checkpoint' {sb.nm_log} || true"]).stdout
        for state in (shown, SEED):
            r = cli_apply(sb, cli, state)
            assert r.returncode == 0, r.stderr
            assert "nothing changed" in r.stderr, r.stderr
        assert snapshot(sb) == before
        assert {d: applied_version(sb, d) for d in ("eth1", "eth2")} == versions
        assert sb.run(["sh", "-c", f"grep -c 'checkpoint' {sb.nm_log} || true"]).stdout == cps_before


def test_flag_change_keeps_the_link_up(cli, require_nm):
    """Changing the flags of an active interface: the device stays activated and the link
    up the whole time (watched with `ip monitor` and NM's device state changes)."""
    with Sandbox(["eth1"]) as sb:
        assert cli_apply(sb, cli, SEED).returncode == 0
        version = applied_version(sb, "eth1")
        nm_log_start = os.path.getsize(sb.nm_log)
        mon = subprocess.Popen(["ip", "-n", sb.netns, "-o", "monitor", "link"],
                               stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.3)
            for flags in ("[subflow, backup]", "[signal]", "[subflow, signal]"):
                state = SEED.replace("address-flags:\n        - subflow\n        - signal",
                                     f"address-flags: {flags}")
                assert state != SEED or flags == "[subflow, signal]"
                r = cli_apply(sb, cli, state)
                assert r.returncode == 0, r.stderr
            time.sleep(0.3)
        finally:
            mon.terminate()
            events = mon.communicate(timeout=5)[0]
        assert applied_version(sb, "eth1") == version + 3, "three reapplies"
        with open(sb.nm_log, encoding="utf-8", errors="replace") as f:
            f.seek(nm_log_start)
            log = f.read()
        assert "device (eth1): state change" not in log, log[-3000:]
        bounced = [e for e in events.splitlines() if "eth1" in e and
                   ("NO-CARRIER" in e or "state DOWN" in e or "Deleted" in e)]
        assert not bounced, events
        assert endpoint_lines(sb) == ["192.0.2.2 signal,subflow eth1"]


def test_verification_failure_rolls_back(cli, require_nm):
    """The peer already uses the IPv6 address the state gives eth1: the kernel's duplicate
    address detection fails, so the state is never reached. The apply fails with
    Verification (desired and current named) and rolls back: NM's profiles are as they
    were, and the address is gone again."""
    with Sandbox(["eth1"]) as sb:
        assert cli_apply(sb, cli, SEED).returncode == 0
        before = snapshot(sb)
        sb.peer_ip("addr", "add", "2001:db8:9::1/64", "dev", sb.peer_veths[0], "nodad")
        state = SEED + "    ipv6:\n      enabled: true\n      address:\n" \
                       "        - ip: 2001:db8:9::1\n          prefix-length: 64\n"
        r = cli_apply(sb, cli, state, "--verify-timeout", "4")
        assert r.returncode == 6, r.stderr
        # NM fails the device on the DAD failure and its autoconnect re-adds the address:
        # the last look finds it failed, tentative or absent.
        assert "eth1: address 2001:db8:9::1/64: desired present, current " in r.stderr, r.stderr
        assert "rolled back" in r.stderr, r.stderr
        sb.wait_for(lambda: snapshot(sb) == before, timeout=5, what="the state as before")
        assert "2001:db8:9::1" not in addresses(sb, "eth1")
        assert not checkpoints(sb)


def test_disjoint_applies_run_side_by_side(cli, require_nm):
    """A checkpoint held on eth1 does not block an apply on eth2."""
    with Sandbox(["eth1", "eth2"]) as sb:
        r = cli_apply(sb, cli, SEED, "--no-commit")
        assert r.returncode == 0, r.stderr
        cp = r.stdout.strip()
        other = SEED.replace("eth1", "eth2").replace("192.0.2.2", "198.51.100.2")
        r2 = cli_apply(sb, cli, other)
        assert r2.returncode == 0, r2.stderr
        assert checkpoints(sb) == [cp]
        assert sb.run([cli, "rollback", cp]).returncode == 0
        assert endpoint_lines(sb) == ["198.51.100.2 signal,subflow eth2"]


def test_rollback_keeps_profiles_added_beside_it(cli, require_nm):
    """A checkpoint held on eth1; an apply on eth2 adds eth2's profile and commits; eth1's
    rollback must leave eth2's profile and endpoint. (test_disjoint_applies_run_side_by_side
    looks right after the rollback, before NM has deleted anything.) The rolled back
    apply's own new profile is gone."""
    with Sandbox(["eth1", "eth2"]) as sb:
        r = cli_apply(sb, cli, SEED, "--no-commit")
        assert r.returncode == 0, r.stderr
        cp = r.stdout.strip()
        other = SEED.replace("eth1", "eth2").replace("192.0.2.2", "198.51.100.2")
        assert cli_apply(sb, cli, other).returncode == 0
        assert sb.run([cli, "rollback", cp]).returncode == 0
        # Given 2 s to go wrong: NM deletes within ~0.1 s when it does.
        with pytest.raises(TimeoutError):
            sb.wait_for(lambda: endpoint_lines(sb) != ["198.51.100.2 signal,subflow eth2"],
                        timeout=2, what="eth2's endpoint gone")
        names = sb.nmcli("-t", "-f", "NAME", "connection", "show").stdout.split()
        assert "eth2" in names and "eth1" not in names, names
        assert not checkpoints(sb) and not pending_records(sb)


def test_ctrl_c_rolls_back(cli, require_nm):
    """SIGINT while an activation waits for a DHCP server that does not exist: the CLI
    rolls back at once (the new profile is gone, no checkpoint stays) and exits with
    Timeout's code, saying it was interrupted."""
    with Sandbox(["eth1"]) as sb:
        before = snapshot(sb)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", sb.netns, cli, "apply", "-"], env=sb.env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc.stdin.write("interfaces:\n- name: eth1\n  ipv4: {enabled: true, dhcp: true}\n")
        proc.stdin.close()
        sb.wait_for(lambda: checkpoints(sb), timeout=10, what="the apply's checkpoint")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        err = proc.stderr.read()
        assert proc.returncode == 7, err
        assert "interrupted" in err and "rolled back" in err, err
        assert not checkpoints(sb)
        sb.wait_for(lambda: snapshot(sb) == before, timeout=5, what="the state as before")


def test_seed_applied_shows_the_seed_query(cli, require_nm, seed_yaml):
    """The seed's example applied, then `show eth1`: the seed's query output (its
    interface, flags per interface and per address; show adds what it also knows)."""
    with Sandbox(["eth1"]) as sb:
        r = cli_apply(sb, cli, seed_yaml)
        assert r.returncode == 0, r.stderr
        shown = json.loads(sb.run([cli, "show", "eth1", "--json"]).stdout)
        [eth1] = shown["interfaces"]
        assert eth1["name"] == "eth1" and eth1["state"] == "up"
        assert sorted(eth1["mptcp"]["address-flags"]) == ["signal", "subflow"]
        assert eth1["ipv4"]["enabled"] is True and eth1["ipv4"]["dhcp"] is False
        assert eth1["ipv4"]["address"] == [
            {"ip": "192.0.2.2", "prefix-length": 24, "mptcp-flags": ["signal", "subflow"]}]
        assert endpoint_lines(sb) == ["192.0.2.2 signal,subflow eth1"]


def test_per_address_flags_are_ignored_with_a_warning(cli, require_nm):
    """NetworkManager holds one flag set per interface: an address's own differing flags
    are ignored, and the CLI says so (warnings always show)."""
    with Sandbox(["eth1"]) as sb:
        state = ("interfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow]}\n"
                 "  ipv4:\n    enabled: true\n    address:\n"
                 "    - {ip: 192.0.2.2, prefix-length: 24, mptcp-flags: [signal]}\n")
        r = sb.run([cli, "apply", "-"], input=state, check=False)
        assert r.returncode == 0, r.stderr
        assert "mptcp-flags [signal] of 192.0.2.2 are ignored" in r.stderr, r.stderr
        assert endpoint_lines(sb) == ["192.0.2.2 subflow eth1"]


def test_python_ctrl_c_rolls_back(require_nm):
    """Ctrl-C (SIGINT) in a Python program blocked in mptcpstate.apply: the apply rolls
    back, then KeyboardInterrupt reaches the program."""
    import sys
    with Sandbox(["eth1"]) as sb:
        before = snapshot(sb)
        code = ("import sys, mptcpstate\n"
                "try:\n"
                "    mptcpstate.apply(sys.stdin.read())\n"
                "except KeyboardInterrupt:\n"
                "    print('interrupted'); sys.exit(3)\n")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", sb.netns, sys.executable, "-c", code], env=sb.env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc.stdin.write("interfaces:\n- name: eth1\n  ipv4: {enabled: true, dhcp: true}\n")
        proc.stdin.close()
        sb.wait_for(lambda: checkpoints(sb), timeout=10, what="the apply's checkpoint")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        out = proc.stdout.read()
        assert proc.returncode == 3 and "interrupted" in out, proc.stderr.read()
        assert not checkpoints(sb)
        sb.wait_for(lambda: snapshot(sb) == before, timeout=5, what="the state as before")
