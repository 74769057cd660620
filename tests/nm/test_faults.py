"""Faults while applying through a real NetworkManager: what a rollback waits for, a link
deleted mid-apply, NetworkManager killed mid-apply and started again, and an
unprivileged caller against a NetworkManager that allows only root.

Every test reads the system before and after (`ip -j addr`, `ip -j mptcp endpoint show`,
NM's profiles) and leaves no undo record behind.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from nmsandbox import Sandbox

import faces
from test_apply import (SEED, checkpoints, cli_apply, endpoint_lines, pending_records,
                        record_dir, snapshot)

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The seed's eth1 changed: another address, other flags.
CHANGED = SEED.replace("192.0.2.2", "192.0.2.9").replace(
    "address-flags:\n        - subflow\n        - signal", "address-flags: [subflow]")
assert "[subflow]" in CHANGED, "the seed's layout changed"

# An IPv6 address the peer holds already: duplicate address detection fails on eth1, so
# verification can never succeed (it waits out its whole window).
CONFLICT_V6 = "2001:db8:9::1"
UNREACHABLE = SEED + ("    ipv6:\n      enabled: true\n      address:\n"
                      f"        - ip: {CONFLICT_V6}\n          prefix-length: 64\n")


def kernel_view(sb: Sandbox) -> tuple:
    """`ip -j addr` and `ip -j mptcp endpoint show` of the sandbox, as the kernel says
    them (the lifetimes of dynamic addresses are dropped: they count down)."""
    addrs = sb.ip("addr", "show", json=True)
    for link in addrs:
        for a in link.get("addr_info", []):
            if a.get("valid_life_time", 4294967295) != 4294967295:
                a.pop("valid_life_time", None)
                a.pop("preferred_life_time", None)
    raw = sb.run(["ip", "-j", "mptcp", "endpoint", "show"]).stdout.strip() or "[]"
    return addrs, json.loads(raw)


def without_ids(view: tuple) -> tuple:
    addrs, eps = view
    return addrs, sorted(json.dumps({k: v for k, v in e.items() if k != "id"}, sort_keys=True)
                         for e in eps)


def clean_records(sb: Sandbox, cli: str) -> list[str]:
    """Rolls back the records a test left pending (returned: a failure), then removes the
    namespace's record directory (its lock, expectation files, timer log)."""
    left = pending_records(sb)
    for path in left:
        sb.run([cli, "rollback", path], check=False)
    shutil.rmtree(record_dir(sb), ignore_errors=True)
    return left


def stop_and_clean(proc, sb, cli) -> list:
    """Kills an apply process still running (a failed test), then clean_records."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
    return clean_records(sb, cli)


# --- item 3: rollback returns once the kernel holds the old state ----------------------

def test_rollback_returns_with_the_kernel_back(cli, require_nm):
    """20 no-commit applies of another address and flags, each rolled back by another
    process (CLI, Python, C in turn): right after the rollback returns, `ip -j addr` and
    `ip -j mptcp endpoint show` read as before the apply (endpoint ids aside: NM re-adds
    the endpoints and the kernel numbers them). The apply's own rollback after a failed
    verification waits the same way."""
    with Sandbox(["eth1"]) as sb:
        try:
            assert cli_apply(sb, cli, SEED).returncode == 0
            sb.wait_for(lambda: endpoint_lines(sb) == ["192.0.2.2 signal,subflow eth1"])
            before = kernel_view(sb)
            rollers = [f for f in (faces.CliFace(cli), faces.python_face(), faces.c_face())
                       if f is not None]
            seen = []
            for i in range(20):
                r = cli_apply(sb, cli, CHANGED, "--no-commit")
                assert r.returncode == 0, r.stderr
                cp = r.stdout.strip()
                assert cp.startswith("/org/freedesktop/NetworkManager/Checkpoint/"), r.stdout
                assert "192.0.2.9" in json.dumps(kernel_view(sb)), "the apply took effect"
                face = rollers[i % len(rollers)]
                res = face.rollback(sb, cp)
                assert res.code == 0, f"cycle {i} ({face.name}): {res}"
                now = kernel_view(sb)
                assert without_ids(now) == without_ids(before), \
                    f"cycle {i} ({face.name}): right after the rollback\n{now}\nbefore\n{before}"
                seen.append(now == before)
                assert not checkpoints(sb)
            # The expectation files of the checkpoints are gone with them.
            d = record_dir(sb)
            assert not (d.is_dir() and any(p.name.startswith("nm-expect-") for p in d.iterdir()))

            # A failed verification: the apply's own rollback returns with the state back.
            sb.peer_ip("addr", "add", f"{CONFLICT_V6}/64", "dev", sb.peer_veths[0], "nodad")
            r = cli_apply(sb, cli, UNREACHABLE, "--verify-timeout", "1")
            assert r.returncode == 6, r.stderr
            assert "rolled back" in r.stderr and "rollback failed" not in r.stderr, r.stderr
            assert without_ids(kernel_view(sb)) == without_ids(before)
        finally:
            left = clean_records(sb, cli)
        assert not left


def test_kernel_mode_rollback_returns_with_the_kernel_back(cli, require_nm):
    """The same cycles in kernel-only mode (no NetworkManager): the rollback writes over
    netlink and reads the kernel back before it returns; `ip -j addr` and `ip -j mptcp
    endpoint show` read as before, endpoint ids included."""
    seed = SEED.replace("type: ethernet", "type: veth")
    changed = CHANGED.replace("type: ethernet", "type: veth")
    with Sandbox(["eth1"], nm=False) as sb:
        try:
            assert cli_apply(sb, cli, seed, "--kernel").returncode == 0
            # The kernel's own link-local address finishes its duplicate address
            # detection about a second after the link came up.
            sb.wait_for(lambda: "fe80:" in sb.ip("-6", "addr", "show", "dev", "eth1")
                        and not sb.ip("-6", "addr", "show", "tentative").strip(),
                        what="eth1's link-local address past duplicate address detection")
            before = kernel_view(sb)
            rollers = [f for f in (faces.CliFace(cli), faces.python_face(), faces.c_face())
                       if f is not None]
            for i in range(20):
                r = cli_apply(sb, cli, changed, "--kernel", "--no-commit")
                assert r.returncode == 0, r.stderr
                assert "192.0.2.9" in json.dumps(kernel_view(sb))
                face = rollers[i % len(rollers)]
                res = face.rollback(sb, r.stdout.strip())
                assert res.code == 0, f"cycle {i} ({face.name}): {res}"
                assert kernel_view(sb) == before, f"cycle {i} ({face.name})"
        finally:
            left = clean_records(sb, cli)
        assert not left


# --- item 9: a link deleted while the apply verifies -----------------------------------

@pytest.mark.parametrize("mode", ["nm", "kernel"])
def test_link_deleted_mid_apply_fails_fast(cli, require_nm, mode):
    """The apply waits for a state that cannot be reached (duplicate address detection
    fails) with a 30 s window; eth1 is deleted 1 s in: the apply fails within about a
    second, with Verification naming eth1, and rolls back what it can (eth2's change)."""
    kernel = mode == "kernel"
    proc = None
    with Sandbox(["eth1", "eth2"], nm=not kernel) as sb:
        try:
            sb.peer_ip("addr", "add", f"{CONFLICT_V6}/64", "dev", "eth1", "nodad")
            other = ("  - name: eth2\n    type: veth\n    state: up\n"
                     "    mptcp: {address-flags: [subflow]}\n"
                     "    ipv4: {enabled: true, dhcp: false, address: "
                     "[{ip: 198.51.100.2, prefix-length: 24}]}\n")
            state = UNREACHABLE.replace("type: ethernet", "type: veth") + other
            before_eth2 = kernel_view(sb)
            argv = [cli, "-v", "apply", "-", "--verify-timeout", "30"] + \
                (["--kernel"] if kernel else [])
            proc = subprocess.Popen(["ip", "netns", "exec", sb.netns] + argv, env=sb.env(),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            proc.stdin.write(state)
            proc.stdin.close()
            # Verification is under way once eth2's endpoint is there.
            sb.wait_for(lambda: any(e["address"] == "198.51.100.2" for e in sb.endpoints()),
                        timeout=10, what="the apply's endpoint on eth2")
            time.sleep(1)
            assert proc.poll() is None, proc.stderr.read()
            t0 = time.monotonic()
            sb.ip("link", "del", "eth1")
            proc.wait(timeout=20)
            took = time.monotonic() - t0
            err = proc.stderr.read()
            assert proc.returncode == 6, err
            assert "the link vanished during the apply: eth1" in err, err
            assert took < 3, f"{took:.1f} s after the link went: {err}"
            # The rollback put back what it could, and says what it could not.
            assert "eth1" in err.split("the rollback failed too")[-1] and "gone" in err, err
            # eth2 is as before the apply.
            eps = [e for e in sb.endpoints() if e["address"] == "198.51.100.2"]
            assert not eps, sb.endpoints()
            addrs = [a["local"] for ln in sb.ip("addr", "show", "dev", "eth2", json=True)
                     for a in ln.get("addr_info", [])]
            assert "198.51.100.2" not in addrs, addrs
            def eth2_addresses(view):
                # The kernel's own link-local address may come (or go tentative) meanwhile.
                return [a for ln in view[0] if ln["ifname"] == "eth2"
                        for a in ln.get("addr_info", []) if a.get("scope") != "link"]
            assert eth2_addresses(kernel_view(sb)) == eth2_addresses(before_eth2)
            if not kernel:
                assert not checkpoints(sb)
        finally:
            left = stop_and_clean(proc, sb, cli)
        assert not left


# --- item 10: NetworkManager killed mid-apply ------------------------------------------

def test_nm_killed_mid_apply_then_the_next_apply_converges(cli, require_nm):
    """NetworkManager is SIGKILLed while the apply verifies: the apply fails saying the
    rollback could not run and naming the checkpoint; NM is started again; the next
    apply of the desired state converges in one call, and so does one after a no-commit
    apply whose NetworkManager was killed."""
    proc = None
    with Sandbox(["eth1"]) as sb:
        try:
            assert cli_apply(sb, cli, SEED).returncode == 0
            sb.peer_ip("addr", "add", f"{CONFLICT_V6}/64", "dev", sb.peer_veths[0], "nodad")
            proc = subprocess.Popen(
                ["ip", "netns", "exec", sb.netns, cli, "-v", "apply", "-",
                 "--verify-timeout", "3"], env=sb.env(), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            proc.stdin.write(UNREACHABLE)
            proc.stdin.close()
            cps = sb.wait_for(lambda: checkpoints(sb), timeout=10, what="the checkpoint")
            time.sleep(0.5)
            sb.kill_nm()
            proc.wait(timeout=30)
            err = proc.stderr.read()
            assert proc.returncode == 6, err
            assert "the rollback could not run" in err, err
            assert cps[0] in err, err
            assert "apply the state again" in err, err

            sb.peer_ip("addr", "del", f"{CONFLICT_V6}/64", "dev", sb.peer_veths[0])
            sb.start_nm()
            r = cli_apply(sb, cli, UNREACHABLE)
            assert r.returncode == 0, r.stderr
            assert endpoint_lines(sb) == ["192.0.2.2 signal,subflow eth1",
                                          f"{CONFLICT_V6} signal,subflow eth1"]

            # A no-commit apply, NM killed and started again: its checkpoint is gone with
            # it, nothing stays in the way of the next apply.
            r = cli_apply(sb, cli, SEED, "--no-commit")
            assert r.returncode == 0, r.stderr
            sb.restart_nm()
            assert not checkpoints(sb)
            r = cli_apply(sb, cli, CHANGED)
            assert r.returncode == 0, r.stderr
            # (eth1's profile keeps the IPv6 address of the first apply: the states say
            # nothing about IPv6.)
            want = ["192.0.2.9 subflow eth1", f"{CONFLICT_V6} subflow eth1"]
            assert endpoint_lines(sb) == want, r.stderr
            r = sb.run([cli, "rollback"], check=False)
            assert r.returncode == 0 and "nothing to roll back" in r.stderr, r.stderr
        finally:
            left = stop_and_clean(proc, sb, cli)
        assert not left


# --- item 11: an unprivileged caller, NetworkManager as distributions ship it -----------

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


class Unprivileged(faces.Face):
    """A face run as uid/gid 65534 (nobody) through setpriv."""

    def __init__(self, face: faces.Face, env: dict | None = None):
        self.face = face
        self.name = face.name
        self.kernel = face.kernel
        self.has_verify_timeout = face.has_verify_timeout
        self.extra_env = env or {}

    def argv(self, cmd: str) -> list[str]:
        return self.face.argv(cmd)

    def parse(self, proc):
        return self.face.parse(proc)

    def run(self, sb, argv, input=None):
        env = sb.env({"HOME": "/", **self.extra_env})
        return sb.run(NOBODY + argv, input=input, check=False, timeout=120, env=env)


@pytest.fixture
def python_copy():
    """The installed package copied where uid 65534 can read it (the test's Python lives
    under /root), for the system's python3 (the extension is abi3)."""
    import mptcpstate
    tmp = tempfile.mkdtemp(prefix="mptcpstate-unpriv-")
    try:
        shutil.copytree(pathlib.Path(mptcpstate.__file__).parent, pathlib.Path(tmp) / "mptcpstate",
                        ignore=shutil.ignore_patterns("__pycache__"))
        os.chmod(tmp, 0o755)
        for dirpath, dirs, files in os.walk(tmp):
            for n in dirs + files:
                os.chmod(os.path.join(dirpath, n), 0o755)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def unprivileged_faces(cli: str, pythonpath: str, kernel: bool) -> list[Unprivileged]:
    py = faces.JsonFace("python", ["/usr/bin/python3", str(ROOT / "tests" / "nm" / "face_py.py")],
                        kernel)
    out = [Unprivileged(faces.CliFace(cli, kernel)),
           Unprivileged(py, {"PYTHONPATH": pythonpath})]
    c = faces.c_face(kernel)
    if c is not None:
        out.append(Unprivileged(c))
    return out


def _read_proc(sb, prefix, env, argv):
    r = sb.run(prefix + argv, check=False, env=env, timeout=60)
    assert r.returncode in (0, 10), f"{argv}: exit {r.returncode}: {r.stderr}"
    return r.stdout


def read_verbs(cli: str) -> dict:
    """show and check, each through the CLI, Python and C: a function per face giving
    what it read, as parsed JSON, from (sandbox, argv prefix, env, kernel)."""
    c_apply = str(ROOT / "build" / "c" / "apply_face")
    c_check = str(ROOT / "build" / "c" / "check_face")

    def c_show(sb, prefix, env, kernel):
        out = json.loads(_read_proc(sb, prefix, env,
                                    [c_apply, "show"] + (["--kernel"] if kernel else [])))
        assert out["code"] == 0, out
        return json.loads(out["state"])

    def faces_of(verb: str, c_face) -> list:
        def cli_face(sb, prefix, env, kernel):
            argv = [cli, verb, "--json"] + (["--kernel"] if kernel else [])
            return json.loads(_read_proc(sb, prefix, env, argv))

        def py_face(sb, prefix, env, kernel):
            code = ("import json, mptcpstate; "
                    f"print(json.dumps(mptcpstate.{verb}(kernel_only={kernel})))")
            return json.loads(_read_proc(sb, prefix, env, ["/usr/bin/python3", "-c", code]))

        return [cli_face, py_face, c_face]

    def c_check_face(sb, prefix, env, kernel):
        argv = [c_check] + (["--kernel"] if kernel else [])
        return json.loads(_read_proc(sb, prefix, env, argv))

    return {"show": faces_of("show", c_show), "check": faces_of("check", c_check_face)}

def test_unprivileged_caller_against_root_only_nm(cli, require_nm, python_copy):
    """NetworkManager with `auth-polkit=root-only`; root holds a no-commit checkpoint.
    Every write verb of every face as uid 65534: PermissionDenied saying what is missing,
    nothing changed (profiles, addresses, endpoints, limits, the checkpoint), and root
    can still commit its checkpoint after. show and check as uid 65534, through every
    face and in both modes, read what root reads."""
    if not shutil.which("setpriv"):
        pytest.skip("no setpriv")
    for path in (cli, str(ROOT / "build" / "c" / "apply_face"),
                 str(ROOT / "build" / "c" / "check_face")):
        # uid 65534 must reach the programs (the worktree is world-readable here).
        assert os.access(path, os.X_OK)
    with Sandbox(["eth1"], auth_polkit="root-only") as sb:
        try:
            r = cli_apply(sb, cli, SEED, "--no-commit")
            assert r.returncode == 0, r.stderr
            cp = r.stdout.strip()
            sb.wait_for(lambda: endpoint_lines(sb) == ["192.0.2.2 signal,subflow eth1"])
            before = snapshot(sb)
            view = kernel_view(sb)
            knobs = "mptcp:\n  limits: {subflows: 4}\n"
            failures = []
            for kernel in (False, True):
                for face in unprivileged_faces(cli, python_copy, kernel):
                    calls = [("apply", lambda f=face: f.apply(sb, CHANGED)),
                             ("apply knobs", lambda f=face: f.apply(sb, knobs))]
                    if not kernel:
                        calls += [("commit", lambda f=face: f.commit(sb, cp)),
                                  ("rollback", lambda f=face: f.rollback(sb, cp)),
                                  ("rollback (newest)", lambda f=face: f.rollback(sb))]
                    for verb, call in calls:
                        res = call()
                        where = f"{face.name}{' --kernel' if kernel else ''} {verb}"
                        if res.kind != "PermissionDenied" or "uid 65534" not in res.msg:
                            failures.append(f"{where}: {res}")
                        if snapshot(sb) != before or kernel_view(sb) != view \
                                or checkpoints(sb) != [cp]:
                            failures.append(f"{where}: the system changed")
            assert not failures, "\n".join(failures)

            # The read verbs, read-only: what root sees, through every face.
            unpriv = sb.env({"HOME": "/", "PYTHONPATH": python_copy})
            for label, reads in read_verbs(cli).items():
                for kernel in (False, True):
                    for face, read in zip(("cli", "python", "c"), reads):
                        root_env = sb.env({"PYTHONPATH": python_copy})
                        assert read(sb, NOBODY, unpriv, kernel) == read(sb, [], root_env, kernel), \
                            f"{label} ({face}, kernel={kernel}) as uid 65534"
            assert snapshot(sb) == before and checkpoints(sb) == [cp]

            r = sb.run([cli, "commit", cp], check=False)
            assert r.returncode == 0, r.stderr
            assert not checkpoints(sb)
        finally:
            left = clean_records(sb, cli)
        assert not left


# --- item 8: Reapply's VersionIdMismatch is retried ------------------------------------

def test_reapply_survives_a_concurrent_client(cli, require_nm):
    """Another client changes eth1's applied connection over and over (`nmcli device
    modify`, each a reapply that raises its version id) while applies change eth1's
    flags (40, and on until one met the race, at most 400): a reapply refused with
    VersionIdMismatch (the version read by the apply went stale) is tried again with the
    version read afresh, so every apply succeeds, and the log says so each time."""
    with Sandbox(["eth1"]) as sb:
        assert cli_apply(sb, cli, SEED).returncode == 0
        loop = subprocess.Popen(
            ["sh", "-c", "i=0; while :; do i=$((i+1)); "
             "nmcli device modify eth1 ipv4.dns-priority $((i % 50 + 1)) >/dev/null 2>&1; done"],
            env=sb.env(), start_new_session=True)
        retries, failed = 0, []
        try:
            applies = 0
            while applies < 40 or (retries == 0 and applies < 400):
                r = cli_apply(sb, cli, CHANGED if applies % 2 == 0 else SEED)
                applies += 1
                retries += r.stderr.count("changed the applied connection meanwhile")
                if r.returncode != 0:
                    failed.append(r.stderr[-600:])
        finally:
            os.killpg(loop.pid, 9)
            loop.wait()
        assert not failed, "\n".join(failed)
        # The race did happen (how often depends on the machine's timing): the retries
        # were needed.
        assert retries >= 1, f"no apply of {applies} met the race"
        r = cli_apply(sb, cli, SEED)
        assert r.returncode == 0, r.stderr
        sb.wait_for(lambda: endpoint_lines(sb) == ["192.0.2.2 signal,subflow eth1"], timeout=2)
