"""Kernel-only apply (no NetworkManager) against the real kernel, through every face.

The scenarios are one table, tests/fixtures/apply/kernel_cases.json, run through the CLI
(`apply --kernel`), the Python package (`kernel_only=True`) and the C library
(`MPTCPSTATE_FLAG_KERNEL_ONLY`, under valgrind with MPTCPSTATE_FACE_VALGRIND, see
tests/nm/faces.py), each
case in a fresh sandbox without NetworkManager and without a bus. Scenarios that watch
the system while an apply runs, or that need a process killed or interrupted, follow the
table (CLI and Python).

"Nothing changed" is always read from the kernel with iproute2 and sysctl, before and
after: `ip -j addr`, `ip mptcp endpoint show` (ids, flags, ports, devices), `ip mptcp
limits show` and the net.mptcp sysctls.
"""
from __future__ import annotations

import fnmatch
import glob
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "nm"))
sys.path.insert(0, str(ROOT / "tests" / "harness"))

import faces  # noqa: E402
from nmsandbox import Sandbox, netns_cookie  # noqa: E402

TABLE = json.loads((ROOT / "tests" / "fixtures" / "apply" / "kernel_cases.json").read_text())
CASES = {c["name"]: c for c in TABLE["cases"]}
SEED = (ROOT / "tests" / "fixtures" / "seed.yml").read_text()
RUN_DIR = "/run/mptcpstate"
FACE_NAMES = ["cli", "python", "c"]


def _require_root():
    missing = [b for b in ("ip", "sysctl") if shutil.which(b) is None]
    if os.geteuid() != 0 or missing:
        why = f"needs root and {', '.join(missing) or 'nothing'} to make network namespaces"
        if os.environ.get("MPTCPSTATE_REQUIRE_KERNEL") or os.environ.get("MPTCPSTATE_REQUIRE_NM"):
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(params=FACE_NAMES)
def face(request, cli):
    _require_root()
    if request.param == "cli":
        return faces.CliFace(cli, kernel=True)
    if request.param == "python":
        return faces.python_face(kernel=True)
    c = faces.c_face(kernel=True)
    if c is None:
        if os.environ.get("MPTCPSTATE_REQUIRE_NM"):
            pytest.fail("build/c/apply_face is missing: run `make -C tests/c check`")
        pytest.skip("no C face built (make -C tests/c check)")
    return c


# --- what the kernel holds -------------------------------------------------------------

SNAPSHOT_SH = ("ip -j addr show; echo '#'; ip mptcp endpoint show; echo '#'; "
               "ip mptcp limits show; echo '#'; sysctl net.mptcp")


def snapshot(sb: Sandbox) -> dict:
    """The kernel as iproute2 and sysctl show it: every address of every link (with the
    link's flags and state), every endpoint line (id, flags, port, device), the limits
    and the net.mptcp sysctls. One process."""
    out = sb.run(["sh", "-c", SNAPSHOT_SH]).stdout
    addr, eps, limits, sysctls = out.split("#\n")
    return {
        "addr": json.loads(addr),
        "endpoints": sorted(ln.strip() for ln in eps.splitlines() if ln.strip()),
        "limits": parse_limits(limits),
        "sysctls": parse_sysctls(sysctls),
    }


def parse_limits(text: str) -> dict:
    """`add_addr_accepted 0 subflows 2` (iproute2 6.1 ignores -j here)."""
    words = text.split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}


def parse_sysctls(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" = ")
        if name.startswith("net.mptcp."):
            out[name[len("net.mptcp."):]] = value.strip()
    return out


def endpoint_lines(sb: Sandbox) -> list[str]:
    return snapshot(sb)["endpoints"]


def unsettled(sb: Sandbox) -> list[str]:
    """What is still on its way after a link came up: carrier, the kernel's IPv6
    link-local address, duplicate address detection (tentative addresses)."""
    out = []
    for link in sb.ip("addr", "show", json=True):
        name, addrs = link["ifname"], link.get("addr_info", [])
        out += [f"{name} {a['local']} tentative" for a in addrs
                if a.get("tentative") and not a.get("dadfailed")]
        if name == "lo" or "UP" not in link["flags"]:
            continue
        if "NO-CARRIER" in link["flags"] or link.get("operstate") != "UP":
            out.append(f"{name} no carrier")
        elif not any(a["family"] == "inet6" and a.get("scope") == "link" for a in addrs):
            out.append(f"{name} no link-local address")
    return out


def settled(sb: Sandbox, timeout: float = 5.0) -> None:
    """Waits until the transient part of a link's coming up is over (not state)."""
    sb.wait_for(lambda: not unsettled(sb), timeout=timeout,
                what="carrier, IPv6 link-local addresses and duplicate address detection")


def settled_snapshot(sb: Sandbox) -> dict:
    settled(sb)
    return snapshot(sb)


def link_addresses(snap: dict, dev: str) -> list[str]:
    """The link's addresses but the IPv6 link-local ones, as ADDR/PREFIX."""
    for link in snap["addr"]:
        if link["ifname"] == dev:
            return sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                          if a.get("scope") != "link")
    raise AssertionError(f"no link {dev}")


def link_up(snap: dict, dev: str) -> bool:
    return "UP" in next(link["flags"] for link in snap["addr"] if link["ifname"] == dev)


def match_all(patterns: list[str], values: list[str]) -> bool:
    """Each pattern matches exactly one value and nothing is left over."""
    left = list(values)
    for p in patterns:
        hit = next((v for v in left if fnmatch.fnmatchcase(v, p)), None)
        if hit is None:
            return False
        left.remove(hit)
    return not left


def ns_dir(sb: Sandbox) -> str:
    """The record directory of the sandbox's namespace: /run/mptcpstate/<netns cookie>."""
    return f"{RUN_DIR}/{netns_cookie(sb.netns)}"


def pending(nsdir: str) -> list[str]:
    return sorted(glob.glob(f"{nsdir}/checkpoint-*.json"))


def records(nsdir: str) -> list[str]:
    """Every record file, pending or claimed (being committed or rolled back)."""
    return sorted(glob.glob(f"{nsdir}/checkpoint-*"))


def fresh_ns_dir(sb: Sandbox) -> str:
    """The namespace's record directory, which holds no record yet: its cookie is new (a
    setup apply may have made the directory, with its lock)."""
    d = ns_dir(sb)
    assert not pending(d), f"{d} holds records for a new namespace: {pending(d)}"
    return d


def clean_up(sb: Sandbox, cli: str, nsdir: str) -> list[str]:
    """Rolls back what is still pending (so that no timer outlives the test) and removes
    the directory; returns what was pending."""
    left = pending(nsdir)
    for path in left:
        sb.run([cli, "rollback", path], check=False)
    shutil.rmtree(nsdir, ignore_errors=True)
    return left


# --- the table -------------------------------------------------------------------------

def subst(text: str, last_cp: str | None, nsdir: str) -> str:
    return text.replace("$checkpoint", last_cp or "<none>").replace("$nsdir", nsdir)


def check_expect(sb: Sandbox, cli: str, expect: dict, result: faces.Result, before: dict,
                 snap: dict | None, last_cp: str | None, nsdir: str, where: str) -> None:
    kind = expect.get("kind")
    assert result.kind == kind, f"{where}: {result}"
    for text in expect.get("msg", []):
        text = subst(text, last_cp, nsdir)
        assert text in result.msg, f"{where}: {text!r} not in {result.msg!r}"
    for text in expect.get("log", []):
        text = subst(text, last_cp, nsdir)
        assert text in result.log, f"{where}: {text!r} not in the log:\n{result.log}"
    for text in expect.get("no_log", []):
        assert text not in result.log, f"{where}: {text!r} in the log:\n{result.log}"
    if expect.get("checkpoint") is True:
        cp = result.checkpoint
        assert cp and fnmatch.fnmatchcase(cp, f"{nsdir}/checkpoint-*.json"), f"{where}: {result}"
        assert os.path.exists(cp), f"{where}: {cp} is not there"
        assert os.stat(cp).st_mode & 0o777 == 0o600, f"{where}: {cp} mode {os.stat(cp).st_mode:o}"
    elif expect.get("checkpoint") is False:
        assert result.checkpoint is None, f"{where}: {result}"
    now = snapshot(sb)
    if "kernel" in expect:
        assert match_all(expect["kernel"], now["endpoints"]), \
            f"{where}: endpoints {now['endpoints']}, want {expect['kernel']}"
    for dev, want in expect.get("addresses", {}).items():
        assert link_addresses(now, dev) == sorted(want), \
            f"{where}: {dev} addresses {link_addresses(now, dev)}, want {want}"
    for dev, want in expect.get("links", {}).items():
        assert link_up(now, dev) == (want == "up"), f"{where}: {dev} is not {want}"
    for name, value in expect.get("limits", {}).items():
        assert now["limits"][name] == value, f"{where}: limits {now['limits']}"
    for name, value in expect.get("sysctls", {}).items():
        assert now["sysctls"][name] == value, f"{where}: net.mptcp.{name} = {now['sysctls'][name]}"
    if expect.get("untouched"):
        assert now == before, f"{where}: the kernel changed:\nbefore {before}\nafter  {now}"
    if expect.get("same_as_snapshot"):
        assert snap is not None, f"{where}: no snapshot step before"
        try:
            sb.wait_for(lambda: snapshot(sb) == snap, timeout=5, what="the snapshot")
        except TimeoutError:
            assert snapshot(sb) == snap, f"{where}: not the snapshot"
    if "records" in expect:
        assert len(pending(nsdir)) == expect["records"], f"{where}: records {pending(nsdir)}"
    if "timer_log" in expect:
        log = pathlib.Path(nsdir, "timer.log").read_text()
        for text in expect["timer_log"]:
            text = subst(text, last_cp, nsdir)
            assert text in log, f"{where}: {text!r} not in timer.log:\n{log}"
    if "show" in expect:
        shown = json.loads(sb.run([cli, "show", "--kernel", "--json"]).stdout)
        ifaces = {i["name"]: i for i in shown["interfaces"]}
        for dev, addrs in expect["show"].items():
            listed = {a["ip"]: a for fam in ("ipv4", "ipv6")
                      for a in (ifaces[dev].get(fam) or {}).get("address", [])}
            for ip, fields in addrs.items():
                for field, value in fields.items():
                    assert listed[ip].get(field) == value, f"{where}: show {dev} {ip}: {listed[ip]}"


def quick_link_local(sb: Sandbox) -> None:
    """Brings the sandbox's links up again with duplicate address detection off for a
    moment, so that their IPv6 link-local addresses are there at once instead of after
    1-2 s of DAD per case; DAD is back on before anything else happens, so the addresses
    the library adds (and restores) go through it."""
    names = " ".join(sb.veths)
    sb.run(["sh", "-c", f"""
        for d in {names}; do sysctl -qw net.ipv6.conf.$d.accept_dad=0; ip link set $d down; \
            ip link set $d up; done"""])
    try:
        settled(sb)
    finally:
        sb.run(["sh", "-c", f"for d in {names}; do sysctl -qw net.ipv6.conf.$d.accept_dad=1; done"])


def kernel_sandbox(veths: list[str]) -> Sandbox:
    """A started sandbox without NetworkManager (and no bus), its links settled."""
    sb = Sandbox(veths, nm=False).start()
    try:
        quick_link_local(sb)
    except BaseException:
        sb.stop()
        raise
    return sb


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_table(case, face, cli):
    spec = CASES[case]
    with kernel_sandbox(spec["veths"]) as sb:
        nsdir = fresh_ns_dir(sb)
        try:
            for line in spec.get("setup", []):
                sb.run(["sh", "-c", line])
            run_case(sb, cli, spec, face, nsdir)
        finally:
            left = clean_up(sb, cli, nsdir)
        assert not left, f"{case} ({face.name}): records left pending: {left}"


# Errors a dry run meets as the apply does (found before anything is written).
PLANNED_ERRORS = {"InvalidArgument", "NotSupported", "Busy"}


def dry_run_first(sb: Sandbox, step: dict, face: faces.Face, state: str, opts: dict,
                  before: dict, nsdir: str, where: str) -> faces.Result:
    """Before each apply step: the same state and options as a dry run through the same
    face. It writes nothing (the kernel's snapshot and the namespace's undo records are
    as before), and fails where the apply fails before writing."""
    pending = records(nsdir)
    dry = face.apply(sb, state, dry_run=True, no_commit=opts.get("no_commit", False),
                     timeout=opts.get("timeout"), no_verify=opts.get("no_verify", False))
    assert dry.checkpoint is None, f"{where}: dry run: {dry}"
    assert snapshot(sb) == before, f"{where}: the dry run changed the kernel"
    assert records(nsdir) == pending, f"{where}: the dry run left a record"
    faces.check_dry_run_result(dry, step.get("expect", {}).get("kind"), PLANNED_ERRORS, where)
    return dry


def check_plan(sb: Sandbox, dry: faces.Result, result: faces.Result, before: dict,
               where: str) -> None:
    """A successful apply returns the plan its dry run gave; empty exactly when it wrote
    nothing."""
    if result.kind is not None or dry.kind is not None:
        return
    assert dry.plan == result.plan, f"{where}: dry run {dry.plan}, apply {result.plan}"
    if faces.is_empty_plan(result.plan):
        assert snapshot(sb) == before, f"{where}: an empty plan, yet the kernel changed"
        assert result.checkpoint is None, f"{where}: an empty plan left {result.checkpoint}"


def run_case(sb: Sandbox, cli: str, spec: dict, face: faces.Face, nsdir: str) -> None:
    snap = None
    last_cp = None
    applied_at = time.monotonic()
    for i, step in enumerate(spec["steps"]):
        where = f"{spec['name']} step {i} ({face.name})"
        if "run" in step:
            for line in step["run"]:
                sb.run(["sh", "-c", subst(line, last_cp, nsdir)])
            continue
        before = settled_snapshot(sb)
        if step.get("snapshot"):
            snap = before
            continue
        if "apply" in step:
            opts = step.get("opts", {})
            state = step["apply"]
            state = state if isinstance(state, str) else json.dumps(state)
            dry = dry_run_first(sb, step, face, state, opts, before, nsdir, where)
            applied_at = time.monotonic()
            result = face.apply(sb, state,
                                no_commit=opts.get("no_commit", False),
                                timeout=opts.get("timeout"),
                                no_verify=opts.get("no_verify", False),
                                plan=True)
            check_plan(sb, dry, result, before, where)
            if result.checkpoint:
                last_cp = result.checkpoint
        elif "commit" in step or "rollback" in step:
            verb = "commit" if "commit" in step else "rollback"
            arg = step[verb]
            arg = subst(arg, last_cp, nsdir) if arg is not None else None
            result = getattr(face, verb)(sb, arg)
        elif "wait_rolled_back" in step:
            sb.wait_for(lambda: not records(nsdir), timeout=step["wait_rolled_back"],
                        what="the rollback timer")
            waited = time.monotonic() - applied_at
            assert waited >= step.get("not_before", 0), \
                f"{where}: rolled back {waited:.1f} s after the apply began"
            result = faces.Result(0, None, "", None)
        else:
            raise AssertionError(f"{where}: unknown step {step}")
        check_expect(sb, cli, step.get("expect", {}), result, before, snap, last_cp, nsdir, where)


# --- watched while applying, killed, interrupted (CLI and Python) ----------------------

def cli_apply(sb: Sandbox, cli: str, state: str, *args: str, timeout: float = 120):
    return sb.run([cli, "-v", "apply", "--kernel", "-", *args], input=state, check=False,
                  timeout=timeout)


# Something to restore: two IPv4 addresses (one endpoint with a port), an IPv6 address
# with its own flags, endpoint ids 1-3; an endpoint on eth2 outside the apply.
BEFORE = """
interfaces:
- name: eth1
  mptcp: {address-flags: [signal, subflow]}
  ipv4:
    address:
    - {ip: 192.0.2.2, prefix-length: 24}
    - {ip: 192.0.2.3, prefix-length: 24, mptcp-flags: [signal], mptcp-port: 8080}
  ipv6:
    address:
    - {ip: 2001:db8:9::5, prefix-length: 64, mptcp-flags: [subflow, backup]}
- name: eth2
  mptcp: {address-flags: [subflow]}
  ipv4: {address: [{ip: 198.51.100.2, prefix-length: 24}]}
"""
BEFORE_ENDPOINTS = [
    "192.0.2.2 id 1 signal subflow dev eth1",
    "192.0.2.3 port 8080 id 2 signal dev eth1",
    "2001:db8:9::5 id 3 subflow backup dev eth1",
    "198.51.100.2 id 4 subflow dev eth2",
]
# The peer has 2001:db8:9::1 already: duplicate address detection fails on eth1. On the
# way the apply changes the flags of 192.0.2.2 (a re-created endpoint), replaces the IPv6
# address (its endpoint goes) and sets the limits.
DUPLICATE = "2001:db8:9::1"
FAILING = f"""
mptcp: {{limits: {{subflows: 5, add-addr-accepted: 3}}}}
interfaces:
- name: eth1
  mptcp: {{address-flags: [subflow]}}
  ipv4:
    address:
    - {{ip: 192.0.2.2, prefix-length: 24}}
    - {{ip: 192.0.2.3, prefix-length: 24, mptcp-flags: [signal], mptcp-port: 8080}}
  ipv6:
    address:
    - {{ip: {DUPLICATE}, prefix-length: 64, mptcp-flags: [signal]}}
"""


def prepared(cli: str) -> Sandbox:
    """A sandbox holding BEFORE (settled), the peer holding the duplicate address."""
    sb = kernel_sandbox(["eth1", "eth2"])
    try:
        r = cli_apply(sb, cli, BEFORE)
        assert r.returncode == 0, r.stderr
        assert endpoint_lines(sb) == sorted(BEFORE_ENDPOINTS)
        sb.peer_ip("-6", "addr", "add", f"{DUPLICATE}/64", "dev", sb.peer_veths[0], "nodad")
        settled(sb)
    except BaseException:
        sb.stop()
        raise
    return sb


def dad_failed(sb: Sandbox) -> bool:
    return any(a["local"] == DUPLICATE and a.get("dadfailed")
               for link in sb.ip("-6", "addr", "show", "dev", "eth1", json=True)
               for a in link.get("addr_info", []))


def test_verification_failure_rolls_back(cli):
    """The peer already uses the IPv6 address the state gives eth1: duplicate address
    detection fails, so the kernel never holds the state. The apply fails with
    Verification (exit 6) naming the address, and rolls back: addresses, endpoints with
    their ids, flags and ports, limits and sysctls are as before (once the restored IPv6
    address has been through DAD again)."""
    _require_root()
    with prepared(cli) as sb:
        nsdir = fresh_ns_dir(sb)
        before = settled_snapshot(sb)
        r = cli_apply(sb, cli, FAILING, "--verify-timeout", "3")
        assert r.returncode == 6, r.stderr
        assert f"eth1: address {DUPLICATE}/64: desired present, current " in r.stderr, r.stderr
        assert "within 3 s" in r.stderr and "rolled back" in r.stderr, r.stderr
        assert "the kernel holds the state before the apply again" in r.stderr, r.stderr
        assert settled_snapshot(sb) == before
        assert not pending(nsdir)
        clean_up(sb, cli, nsdir)


INTERRUPTIBLE = {
    "cli": lambda cli: [cli, "apply", "--kernel", "--verify-timeout", "60", "-"],
    "python": lambda cli: [sys.executable, "-c", textwrap.dedent("""
        import sys, mptcpstate
        try:
            mptcpstate.apply(sys.stdin.read(), kernel_only=True, verify_timeout=60)
        except KeyboardInterrupt:
            print('interrupted'); sys.exit(7)
        """)],
}


@pytest.mark.parametrize("face_name", list(INTERRUPTIBLE))
def test_ctrl_c_in_verification_rolls_back(cli, face_name):
    """SIGINT while the apply waits in verification (for an IPv6 address whose duplicate
    address detection failed, with a 60 s verification timeout): it rolls back at once;
    the CLI exits with Timeout's code (7) saying it was interrupted, Python raises
    KeyboardInterrupt; the kernel is as before."""
    _require_root()
    with prepared(cli) as sb:
        nsdir = fresh_ns_dir(sb)
        before = settled_snapshot(sb)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", sb.netns] + INTERRUPTIBLE[face_name](cli), env=sb.env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            proc.stdin.write(FAILING)
            proc.stdin.close()
            # Written and verifying: the address is there, its DAD failed.
            sb.wait_for(lambda: dad_failed(sb), timeout=10, what="the failed DAD")
            assert proc.poll() is None, proc.stderr.read()
            start = time.monotonic()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
            out, err = proc.stdout.read(), proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert time.monotonic() - start < 5
        assert proc.returncode == 7, (out, err)
        if face_name == "cli":
            assert "interrupted" in err and "rolled back" in err, err
        else:
            assert out.strip() == "interrupted", (out, err)
        assert settled_snapshot(sb) == before
        assert not pending(nsdir)
        clean_up(sb, cli, nsdir)


def test_killed_caller_is_rolled_back_by_the_timer(cli):
    """A Python program applies with commit=False, rollback_timeout=3 and kills itself
    (SIGKILL): nobody commits or rolls back, so the timer process rolls the record back
    after 3 s; the kernel is as before, the record gone, timer.log says so."""
    _require_root()
    with kernel_sandbox(["eth1", "eth2"]) as sb:
        nsdir = fresh_ns_dir(sb)
        try:
            r = cli_apply(sb, cli, BEFORE)
            assert r.returncode == 0, r.stderr
            before = settled_snapshot(sb)
            state = BEFORE.replace("[signal, subflow]", "[subflow, backup]") + \
                "mptcp: {limits: {subflows: 6}}\n"
            code = textwrap.dedent("""
                import os, signal, sys, mptcpstate
                cp = mptcpstate.apply(sys.stdin.read(), kernel_only=True, commit=False,
                                      rollback_timeout=3)
                print(cp, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
                """)
            t0 = time.monotonic()
            p = sb.run([sys.executable, "-c", code], input=state, check=False, timeout=30)
            assert p.returncode == -signal.SIGKILL, (p.stdout, p.stderr)
            cp = p.stdout.strip()
            assert pending(nsdir) == [cp], (cp, pending(nsdir))
            changed = snapshot(sb)
            assert changed["limits"]["subflows"] == 6
            assert match_all(["192.0.2.2 id * subflow backup dev eth1",
                              "192.0.2.3 port 8080 id 2 signal dev eth1",
                              "2001:db8:9::5 id 3 subflow backup dev eth1",
                              "198.51.100.2 id 4 subflow dev eth2"], changed["endpoints"]), changed
            sb.wait_for(lambda: not records(nsdir), timeout=8, what="the timer's rollback")
            assert time.monotonic() - t0 > 2.5, "rolled back before its deadline"
            assert snapshot(sb) == before
            log = pathlib.Path(nsdir, "timer.log").read_text()
            assert f"{cp}: rolled back at its deadline" in log, log
        finally:
            clean_up(sb, cli, nsdir)


# --- show's output, applied back -------------------------------------------------------

def test_show_output_applied_back_changes_nothing(cli):
    """`show --kernel`'s whole output applied back in kernel mode changes nothing: loopback,
    IPv6 link-local addresses, per-address flags that differ, laminar, a port, an address
    without endpoint, and an implicit endpoint the kernel made for a subflow (WireBed: the
    server announces 10.2.2.1, the client has no endpoint on eth2). YAML and JSON; the
    log says nothing changed."""
    _require_root()
    from wire import WireBed
    with WireBed(rate=None, ipv6=True) as bed:
        sb = bed.sb
        nsdir = fresh_ns_dir(sb)
        try:
            bed.configure_server("ip mptcp endpoint add 10.2.2.1 dev eth2 signal")
            bed.configure_client("ip mptcp limits set add_addr_accepted 1 subflows 2")
            r = bed.transfer(200_000, timeout=15)
            assert r["client"]["ok"] and r["client"]["mptcp"], r["client"]
            sb.wait_for(lambda: any(ln.startswith("10.2.2.2 ") and "rawflags 10" in ln
                                    for ln in endpoint_lines(sb)),
                        timeout=5, what="the implicit endpoint of 10.2.2.2")
            state = textwrap.dedent("""
                interfaces:
                - name: eth1
                  ipv4:
                    address:
                    - {ip: 10.1.1.2, prefix-length: 24}
                    - {ip: 10.1.1.3, prefix-length: 24, mptcp-flags: [subflow, laminar]}
                    - {ip: 10.1.1.4, prefix-length: 24, mptcp-flags: [signal], mptcp-port: 8080}
                  ipv6:
                    address:
                    - {ip: 2001:db8:1::2, prefix-length: 64, mptcp-flags: [subflow, backup]}
                """)
            a = cli_apply(sb, cli, state)
            assert a.returncode == 0, a.stderr
            settled(sb)
            shown = sb.run([cli, "show", "--kernel"]).stdout
            assert "- implicit" in shown and "- laminar" in shown and "mptcp-port: 8080" in shown
            before = snapshot(sb)
            for text in (shown, sb.run([cli, "show", "--kernel", "--json"]).stdout):
                r = cli_apply(sb, cli, text)
                assert r.returncode == 0, r.stderr
                assert "nothing changed" in r.stderr, r.stderr
                assert snapshot(sb) == before
        finally:
            clean_up(sb, cli, nsdir)


def test_show_of_a_down_link_with_an_endpoint_applied_back(cli):
    """show reports a down link's endpoint as its address's mptcp-flags with state: down;
    applied back, the flags are honoured: nothing changes (a bare `state: down` takes the
    endpoints away, as the table's down-absent-up case shows)."""
    _require_root()
    with kernel_sandbox(["eth1"]) as sb:
        sb.run(["sh", "-c", "ip addr add 192.0.2.2/24 dev eth1 && "
                "ip mptcp endpoint add 192.0.2.2 dev eth1 subflow && ip link set eth1 down"])
        before = snapshot(sb)
        r = cli_apply(sb, cli, sb.run([cli, "show", "--kernel"]).stdout)
        assert r.returncode == 0, r.stderr
        assert snapshot(sb) == before


# --- NetworkManager beside a kernel-only apply -----------------------------------------

NM_WARNING = "NetworkManager manages this interface and replaces its endpoints"


def test_nm_managed_interface_is_warned_about(cli):
    """Where a NetworkManager runs and manages eth1, a kernel-only apply that changes eth1
    warns that NM replaces the endpoints of interfaces it manages and names
    connection.mptcp-flags disabled (0x1); one that changes nothing does not warn. Without
    NM and without a bus, no such warning."""
    _require_root()
    if shutil.which("NetworkManager") is None:
        if os.environ.get("MPTCPSTATE_REQUIRE_NM"):
            pytest.fail("no NetworkManager")
        pytest.skip("no NetworkManager")
    with Sandbox(["eth1"]) as sb:
        nsdir = fresh_ns_dir(sb)
        try:
            r = sb.run([cli, "apply", "--kernel", "-"], input=SEED, check=False)
            assert r.returncode == 0, r.stderr
            assert f"eth1: {NM_WARNING}" in r.stderr, r.stderr
            assert "connection.mptcp-flags to disabled (0x1)" in r.stderr, r.stderr
            assert "192.0.2.2 id 1 signal subflow dev eth1" in endpoint_lines(sb)
            again = sb.run([cli, "apply", "--kernel", "-"], input=SEED, check=False)
            assert again.returncode == 0 and NM_WARNING not in again.stderr, again.stderr
        finally:
            clean_up(sb, cli, nsdir)
    assert not os.path.exists("/run/dbus/system_bus_socket")
    assert "DBUS_SYSTEM_BUS_ADDRESS" not in os.environ
    with kernel_sandbox(["eth1"]) as sb:
        nsdir = fresh_ns_dir(sb)
        try:
            r = sb.run([cli, "-v", "apply", "--kernel", "-"], input=SEED, check=False)
            assert r.returncode == 0, r.stderr
            assert "NetworkManager manages" not in r.stderr, r.stderr
            assert "NetworkManager" not in r.stderr.replace("(NetworkManager profiles do)", ""), \
                r.stderr
        finally:
            clean_up(sb, cli, nsdir)


def test_networkmanager_of_another_namespace_is_not_this_ones(cli):
    """The peer namespace reaches the sandbox's bus (DBUS_SYSTEM_BUS_ADDRESS), but the
    NetworkManager there runs in the sandbox namespace: a kernel-only apply in the peer
    namespace does not warn about it, `show` through it is refused (its devices are not
    the peer's links), and `check` leaves NetworkManager's findings out."""
    _require_root()
    if shutil.which("NetworkManager") is None:
        if os.environ.get("MPTCPSTATE_REQUIRE_NM"):
            pytest.fail("no NetworkManager")
        pytest.skip("no NetworkManager")
    with Sandbox(["eth1"]) as sb:
        peer_dir = f"{RUN_DIR}/{netns_cookie(sb.peer_netns)}"
        state = SEED.replace("192.0.2.2", "192.0.2.1")
        try:
            r = sb.peer_run([cli, "apply", "--kernel", "-"], input=state, check=False)
            assert r.returncode == 0, r.stderr
            assert NM_WARNING not in r.stderr, r.stderr
            r = sb.peer_run([cli, "show"], check=False)
            assert r.returncode == 4, r.stderr
            assert "runs in another network namespace" in r.stderr, r.stderr
            # An apply through it is refused too (NM's namespace is asked beside the
            # reads), and NM is left as it was.
            profiles = sorted(os.listdir(sb.keyfile_dir))
            r = sb.peer_run([cli, "apply", "-"], input=state, check=False)
            assert r.returncode == 4, r.stderr
            assert "runs in another network namespace" in r.stderr, r.stderr
            assert sorted(os.listdir(sb.keyfile_dir)) == profiles
            r = sb.peer_run([cli, "-v", "check", "--json"], check=False)
            assert r.returncode in (0, 10), r.stderr
            assert "another network namespace" in r.stderr, r.stderr
            # In its own namespace, NetworkManager is asked.
            assert sb.run([cli, "show", "eth1"]).returncode == 0
        finally:
            shutil.rmtree(peer_dir, ignore_errors=True)


def test_a_failed_rollback_keeps_the_timer(cli):
    """An explicit rollback that fails (eth1 renamed meanwhile: the record's link is not
    there) puts the record back, naming the link; the timer has not given up on it: once
    the link is back, it rolls the record back at its deadline."""
    _require_root()
    with kernel_sandbox(["eth1"]) as sb:
        nsdir = fresh_ns_dir(sb)
        try:
            before = settled_snapshot(sb)
            r = cli_apply(sb, cli, SEED, "--no-commit", "--timeout", "4")
            assert r.returncode == 0, r.stderr
            cp = r.stdout.strip()
            sb.ip("link", "set", "eth1", "name", "eth1x")
            fail = sb.run([cli, "rollback", cp], check=False)
            assert fail.returncode == 5, fail.stderr
            assert "eth1 (ifindex 2): the link is gone or was renamed" in fail.stderr, fail.stderr
            assert pending(nsdir) == [cp]
            sb.ip("link", "set", "eth1x", "name", "eth1")
            sb.wait_for(lambda: not records(nsdir), timeout=8, what="the timer's rollback")
            log = pathlib.Path(nsdir, "timer.log").read_text()
            assert f"{cp}: rolled back at its deadline" in log, log
            assert snapshot(sb) == before
        finally:
            clean_up(sb, cli, nsdir)


# --- dry run, the plan, the summary (CLI) -----------------------------------------------

def test_cli_dry_run_plan_and_summary_of_many(cli):
    """Ten links: `--dry-run` prints the plan and changes nothing, `--dry-run --json` gives
    it in natural order (eth2 before eth10), `-v` names every interface in the summary
    with counts by kind, the same state again plans nothing; `commit`/`rollback` with
    nothing pending succeed and say so."""
    names = [f"eth{k}" for k in range(1, 11)]
    sb = kernel_sandbox(names)
    nsdir = ns_dir(sb)
    try:
        limits = sb.mptcp_limits()
        state = json.dumps({
            "mptcp": {"limits": {"subflows": limits["subflows"] % 8 + 1}},
            "interfaces": [
                # The kernel keeps 8 endpoints: 4 interfaces get one.
                {"name": n, "mptcp": {"address-flags": ["subflow"] if k <= 4 else []},
                 "ipv4": {"address": [{"ip": f"192.0.2.{k}", "prefix-length": 24}]}}
                for k, n in enumerate(names, start=1)],
        })
        before = settled_snapshot(sb)
        dry = sb.run([cli, "apply", "--kernel", "--dry-run", "-"], input=state, check=False)
        assert dry.returncode == 0, dry.stderr
        assert "eth4: address-added, endpoint-added\n" in dry.stdout, dry.stdout
        assert "eth10: address-added\n" in dry.stdout, dry.stdout
        assert '  ipv4.address: ' in dry.stdout and "mptcp.limits.subflows: " in dry.stdout
        js = sb.run([cli, "apply", "--kernel", "--dry-run", "--json", "-"], input=state,
                    check=False)
        assert js.returncode == 0, js.stderr
        plan = json.loads(js.stdout)
        assert [i["name"] for i in plan["interfaces"]] == names
        assert plan["interfaces"][1]["after"]["ipv4.address"] == [
            {"ip": "192.0.2.2", "prefix-length": 24}]
        assert [k["key"] for k in plan["host"]] == ["mptcp.limits.subflows"]
        assert snapshot(sb) == before, "the dry runs changed the kernel"
        assert not records(nsdir)

        r = sb.run([cli, "-v", "apply", "--kernel", "--json", "-"], input=state, check=False)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"checkpoint": None, "plan": plan}
        summary = [ln for ln in r.stderr.splitlines() if ln.startswith("applied: ")]
        assert summary == [f"applied: 10 interfaces (6 addresses changed, 4 endpoints changed: "
                           f"{', '.join(names)}), "
                           "mptcp.limits changed"], r.stderr

        again = sb.run([cli, "apply", "--kernel", "--dry-run", "-"], input=state, check=False)
        assert (again.returncode, again.stdout) == (0, "nothing would change\n"), again
        js = sb.run([cli, "apply", "--kernel", "--dry-run", "--json", "-"], input=state,
                    check=False)
        assert json.loads(js.stdout) == {"interfaces": [], "host": []}

        for verb, text in (("commit", "nothing to commit"), ("rollback", "nothing to roll back")):
            done = sb.run([cli, verb], check=False)
            assert done.returncode == 0 and f"{text}: no checkpoint is pending" in done.stderr, \
                done
    finally:
        clean_up(sb, cli, nsdir)
        sb.stop()


def on_a_terminal(sb: Sandbox, argv: list[str], stdin: str) -> tuple[int, str, str]:
    """Runs `argv` in the sandbox with its stderr on a pseudo-terminal (the CLI prints
    its progress and summary there by itself); returns (status, stdout, the terminal's
    lines with the progress line's carriage returns and erasures taken out)."""
    import pty
    import re
    import threading

    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO once the last writer is gone
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    try:
        proc = subprocess.Popen(["ip", "netns", "exec", sb.netns, *argv], env=sb.env(),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        slave = -1
        reader.start()
        out, _ = proc.communicate(stdin.encode(), timeout=120)
        reader.join(timeout=10)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", b"".join(chunks).decode())
    lines = [seg for ln in text.replace("\r\n", "\n").split("\n") for seg in ln.split("\r")]
    return proc.returncode, out.decode(), [ln for ln in lines if ln]


def test_cli_summary_of_300_interfaces(cli):
    """300 links (veth1..veth300): the summary counts the interfaces by kind of change
    and names the first three and the last in natural order (veth2 before veth10, unlike
    string order), on a terminal; `-v` names all 300 in natural order, `--json` gives the
    whole plan, the dry run's. Kernel-only, no NetworkManager."""
    _require_root()
    sb = Sandbox(count=300, prefix="veth", nm=False).start()
    nsdir = ns_dir(sb)
    names = [f"veth{k}" for k in range(1, 301)]
    assert sb.veths == names and sorted(names) != names
    try:
        # No IPv6: 300 link-local addresses going through DAD are not what is tested.
        sb.run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        limits = sb.mptcp_limits()["subflows"]

        def state(net: int, subflows: int) -> str:
            ifaces = []
            for k, n in enumerate(names, start=1):
                if 5 <= k <= 20:
                    ifaces.append({"name": n, "state": "down"})
                    continue
                iface = {"name": n, "ipv4": {"address": [
                    {"ip": f"10.{net + k // 200}.{k % 200}.1", "prefix-length": 24}]}}
                # The kernel keeps 8 endpoints: 4 interfaces get one.
                iface["mptcp"] = {"address-flags": ["subflow"] if k <= 4 else []}
                ifaces.append(iface)
            return json.dumps({"mptcp": {"limits": {"subflows": subflows}},
                               "interfaces": ifaces})

        first = state(0, limits % 8 + 1)
        dry = sb.run([cli, "apply", "--kernel", "--dry-run", "--json", "-"], input=first,
                     check=False)
        assert dry.returncode == 0, dry.stderr
        plan = json.loads(dry.stdout)
        assert [i["name"] for i in plan["interfaces"]] == names
        kinds = {n: tuple(i["actions"]) for n, i in zip(names, plan["interfaces"])}
        assert kinds["veth1"] == ("address-added", "endpoint-added"), kinds["veth1"]
        assert kinds["veth5"] == ("link-down",), kinds["veth5"]
        assert kinds["veth300"] == ("address-added",), kinds["veth300"]

        # -v: every name, in natural order; --json: the plan the dry run gave.
        r = sb.run([cli, "-v", "apply", "--kernel", "--json", "-"], input=first, check=False,
                   timeout=120)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"checkpoint": None, "plan": plan}
        summary = [ln for ln in r.stderr.splitlines() if ln.startswith("applied: ")]
        assert summary == ["applied: 300 interfaces (280 addresses changed, 16 set down, "
                           f"4 endpoints changed: {', '.join(names)}), mptcp.limits changed"], \
            summary

        # On a terminal, without -v: counts, the first three and the last. Other
        # addresses everywhere but on the links set down (already down: unchanged).
        status, out, lines = on_a_terminal(sb, [cli, "apply", "--kernel", "-"],
                                           state(100, (limits % 8 + 1) % 8 + 1))
        assert status == 0, lines
        assert out == ""
        summary = [ln for ln in lines if ln.startswith("applied: ")]
        assert summary == ["applied: 284 interfaces (280 addresses changed, 4 endpoints "
                           "changed: veth1, veth2, veth3, ... veth300), mptcp.limits changed"], \
            lines
        assert not pending(nsdir)
    finally:
        clean_up(sb, cli, nsdir)
        sb.stop()
