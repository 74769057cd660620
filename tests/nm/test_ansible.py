"""The Ansible module `mptcpstate.mptcpstate.apply` (python/ansible_collections), run by
ansible-core's `ansible-playbook` with a local connection inside sandbox namespaces:
through a private NetworkManager and kernel-only. The system is read before and after
each playbook (NetworkManager's profiles, the kernel's addresses, endpoints and knobs):
check mode and a bad state change nothing, the first apply changes what check mode said
it would (the same plan), the second changes nothing, a failed verification is rolled
back. Also: the wheel ships the collection, and Ansible finds it there by itself."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml  # ansible-core's own dependency

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))
sys.path.insert(0, str(ROOT / "tests" / "kernel"))

from nmsandbox import Sandbox  # noqa: E402

import test_apply as nm  # noqa: E402
import test_apply_kernel as kern  # noqa: E402

COLLECTIONS = ROOT / "python"
COLLECTION = COLLECTIONS / "ansible_collections" / "mptcpstate" / "mptcpstate"
CALLBACKS = pathlib.Path(__file__).resolve().parent / "ansible_callbacks"
MODULE = "mptcpstate.mptcpstate.apply"

# The seed's eth1 (subflow, signal on 192.0.2.2/24).
ETH1 = {"name": "eth1", "type": "ethernet", "state": "up",
        "mptcp": {"address-flags": ["subflow", "signal"]},
        "ipv4": {"enabled": True, "dhcp": False,
                 "address": [{"ip": "192.0.2.2", "prefix-length": 24}]}}
# Refused by validation (a misspelt key), given as a YAML string.
BAD = "interfaces:\n- name: eth1\n  mptcp:\n    adress-flags: [subflow]\n"
# An IPv6 address the peer already holds: duplicate address detection fails on eth1, so
# verification never succeeds (tests/nm/test_apply.py, tests/kernel/test_apply_kernel.py).
DUPLICATE = "2001:db8:9::1"


def ansible_playbook() -> str:
    exe = shutil.which("ansible-playbook")
    if exe is None:
        why = "ansible-playbook is missing: pip install 'ansible-core' (scripts/setup.sh)"
        if os.environ.get("MPTCPSTATE_REQUIRE_NM"):
            pytest.fail(why)
        pytest.skip(why)
    return exe


def ansible_env(sb: Sandbox | None, tmp: pathlib.Path, *, collections: str | None) -> dict:
    """Ansible's settings for a test: everything it writes under `tmp` (nothing in
    ~/.ansible), no ansible.cfg of the machine, the test's JSON callback."""
    (tmp / "ansible.cfg").write_text("[defaults]\n")
    env = dict(sb.env() if sb is not None else os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(tmp / "ansible.cfg"),
        "ANSIBLE_HOME": str(tmp / "home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "local-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp / "remote-tmp"),
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
        "ANSIBLE_STDOUT_CALLBACK": "results_json",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    })
    if collections is not None:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections
    return env


def playbook(tmp: pathlib.Path, tasks: list[dict]) -> list[str]:
    """The command line of one playbook of `tasks` against localhost (a local connection,
    this interpreter)."""
    inventory = tmp / "inventory"
    inventory.write_text(f"localhost ansible_connection=local "
                         f"ansible_python_interpreter={sys.executable}\n")
    book = tmp / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False,
                                 "tasks": tasks}]))
    return [ansible_playbook(), "-i", str(inventory), str(book)]


def results(tasks: list[dict], stdout: str, stderr: str) -> list[dict]:
    """Each task's `{"name", "status", "result"}` from the callback's JSON."""
    assert stdout.strip(), (stdout, stderr)
    doc = json.loads(stdout)
    got = [t["name"] for t in doc["tasks"]]
    assert got == [t["name"] for t in tasks], (got, stderr)
    return doc["tasks"]


def play(sb: Sandbox, tmp: pathlib.Path, tasks: list[dict]) -> list[dict]:
    """Runs one playbook of `tasks` inside the sandbox's namespace; returns each task's
    `{"name", "status", "result"}`."""
    proc = sb.run(playbook(tmp, tasks), env=ansible_env(sb, tmp, collections=str(COLLECTIONS)),
                  check=False, timeout=180)
    return results(tasks, proc.stdout, proc.stderr)


def task(name: str, state, **extra) -> dict:
    opts = {k: extra.pop(k) for k in list(extra) if k not in ("check_mode", "diff",
                                                              "ignore_errors")}
    return {"name": name, MODULE: {"state": state, **opts}, **extra}


def is_empty(plan: dict) -> bool:
    return plan == {"interfaces": [], "host": []}


def check_diff(diff: list[dict], plan: dict) -> None:
    """The diff is the plan: an entry per interface (its name; its name and actions) and
    one for the host knobs, a line `KEY: JSON` per key, before and after."""
    want = [(i["name"], f"{i['name']}: {', '.join(i['actions'])}", i["before"], i["after"])
            for i in plan["interfaces"]]
    if plan["host"]:
        want.append(("host", "host", {k["key"]: k["before"] for k in plan["host"]},
                     {k["key"]: k["after"] for k in plan["host"]}))
    assert len(diff) == len(want), diff

    def parsed(text: str) -> dict:
        return {k: json.loads(v) for k, v in
                (line.split(": ", 1) for line in text.splitlines())}

    for d, (bh, ah, before, after) in zip(diff, want):
        assert (d["before_header"], d["after_header"]) == (bh, ah), d
        keys = set(before) | set(after)
        assert parsed(d["before"]) == {k: before.get(k) for k in keys}, d
        assert parsed(d["after"]) == {k: after.get(k) for k in keys}, d


class Mode:
    """What differs between NetworkManager mode and kernel mode: the sandbox, the
    reading of the system, how long a rollback's effects take to show."""

    def __init__(self, name: str):
        self.name = name
        self.kernel = name == "kernel"

    def sandbox(self) -> Sandbox:
        if self.kernel:
            return kern.kernel_sandbox(["eth1"])
        return Sandbox(["eth1"]).start()

    def snapshot(self, sb: Sandbox) -> dict:
        if self.kernel:
            return kern.settled_snapshot(sb)
        # Profiles (keyfiles byte for byte, what NM holds), devices, checkpoints, the
        # kernel's addresses and endpoints, the knobs.
        return nm.without_dad(nm.snapshot(sb))

    def same_as(self, sb: Sandbox, before: dict, what: str) -> None:
        # NetworkManager's rollback of a failed device settles in the background
        # (autoconnect, DAD of the restored addresses): polled, bounded.
        sb.wait_for(lambda: self.snapshot(sb) == before, timeout=10, what=what)
        assert self.snapshot(sb) == before


@pytest.mark.parametrize("mode_name", ["networkmanager", "kernel"])
def test_playbook(mode_name, require_nm, cli, tmp_path):
    """Three playbooks. 1: check mode with --diff reports what would change, a bad
    state fails with InvalidArgument; nothing changed. 2: the apply changes what check
    mode planned (the same plan and diff). 3: the same state again (as a YAML string) is
    unchanged, so is check mode; a verification failure is rolled back; nothing
    changed."""
    ansible_playbook()
    mode = Mode(mode_name)
    kernel = {"kernel_only": True} if mode.kernel else {}
    sb = mode.sandbox()
    nsdir = kern.ns_dir(sb)
    try:
        subflows = sb.mptcp_limits()["subflows"] % 8 + 1
        state = {"mptcp": {"limits": {"subflows": subflows}}, "interfaces": [ETH1]}
        before = mode.snapshot(sb)
        cp_lines = None if mode.kernel else nm.nm_log_checkpoint_lines(sb)

        # 1: nothing written.
        check, bad = play(sb, tmp_path, [
            task("check", state, check_mode=True, diff=True, **kernel),
            task("bad", BAD, ignore_errors=True, **kernel),
        ])
        assert check["status"] == "ok" and check["result"]["changed"] is True, check
        plan = check["result"]["plan"]
        assert [i["name"] for i in plan["interfaces"]] == ["eth1"], plan
        assert plan["host"] == [{"key": "mptcp.limits.subflows",
                                 "before": before["limits"]["subflows"], "after": subflows}]
        actions = plan["interfaces"][0]["actions"]
        if mode.kernel:
            assert actions == ["address-added", "endpoint-added"], plan
        else:
            assert actions == ["profile-added", "activation"], plan
        assert plan["interfaces"][0]["after"]["mptcp.address-flags"] == ["signal", "subflow"]
        check_diff(check["result"]["diff"], plan)
        r = bad["result"]
        assert bad["status"] == "failed", bad
        assert (r["kind"], r["code"], r["rollback"], r["changed"]) == \
            ("InvalidArgument", 1, "nothing-written", False), r
        assert r["msg"].startswith("InvalidArgument: ") and "adress-flags" in r["msg"], r
        assert "plan" not in r, r
        assert mode.snapshot(sb) == before, "check mode or the bad state changed the system"
        if cp_lines is not None:
            assert nm.nm_log_checkpoint_lines(sb) == cp_lines, "check mode made a checkpoint"
        assert not kern.records(nsdir)

        # 2: the apply does what check mode planned.
        (applied,) = play(sb, tmp_path, [task("apply", state, diff=True, **kernel)])
        assert applied["status"] == "ok" and applied["result"]["changed"] is True, applied
        assert applied["result"]["plan"] == plan
        assert applied["result"]["diff"] == check["result"]["diff"]
        assert nm.endpoint_lines(sb) == ["192.0.2.2 signal,subflow eth1"]
        assert sb.mptcp_limits()["subflows"] == subflows
        if not mode.kernel:
            added = sorted(set(nm.profile_uuids(sb)) - set(before["profiles"]))
            assert len(added) == 1, added
            assert nm.profile_field(sb, added[0], "connection.interface-name") == "eth1"
            assert nm.profile_field(sb, added[0], "ipv4.addresses") == "192.0.2.2/24"
            assert nm.profile_field(sb, added[0], "connection.mptcp-flags") != "0x0"
        assert not kern.records(nsdir)

        # 3: nothing written: the same state again, check mode, a failed verification.
        sb.peer_ip("-6", "addr", "add", f"{DUPLICATE}/64", "dev", sb.peer_veths[0], "nodad")
        after = mode.snapshot(sb)
        failing = json.loads(json.dumps(state))
        failing["interfaces"][0]["ipv6"] = {
            "enabled": True, "address": [{"ip": DUPLICATE, "prefix-length": 64}]}
        again, check2, verify = play(sb, tmp_path, [
            task("again", yaml.safe_dump(state), diff=True, **kernel),
            task("check again", state, check_mode=True, diff=True, **kernel),
            task("fails verification", failing, verify_timeout=2, ignore_errors=True,
                 **kernel),
        ])
        for t in (again, check2):
            assert t["status"] == "ok" and t["result"]["changed"] is False, t
            assert is_empty(t["result"]["plan"]) and t["result"]["diff"] == [], t
        r = verify["result"]
        assert verify["status"] == "failed", verify
        assert (r["kind"], r["code"], r["rollback"], r["changed"]) == \
            ("Verification", 6, "rolled-back", False), r
        assert f"eth1: address {DUPLICATE}/64: desired present, current " in r["msg"], r
        mode.same_as(sb, after, "the state before the failed apply")
        assert not kern.records(nsdir)
        if not mode.kernel:
            assert not nm.checkpoints(sb)
    finally:
        kern.clean_up(sb, cli, nsdir)
        sb.stop()


def test_failed_rollback_is_reported(require_nm, tmp_path):
    """NetworkManager is SIGKILLed while the module's apply verifies (a verification
    that cannot succeed): the rollback cannot run, and the task says so, `rollback`
    `rollback-failed` and `changed` (what was written stays until NetworkManager, started
    again, brings up the profiles on disk), with the library's message."""
    ansible_playbook()
    with Sandbox(["eth1"]) as sb:
        sb.peer_ip("-6", "addr", "add", f"{DUPLICATE}/64", "dev", sb.peer_veths[0], "nodad")
        failing = {"interfaces": [dict(ETH1, ipv6={
            "enabled": True, "address": [{"ip": DUPLICATE, "prefix-length": 64}]})]}
        tasks = [task("fails verification", failing, verify_timeout=6)]
        proc = subprocess.Popen(["ip", "netns", "exec", sb.netns, *playbook(tmp_path, tasks)],
                                env=ansible_env(sb, tmp_path, collections=str(COLLECTIONS)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            cps = sb.wait_for(lambda: nm.checkpoints(sb), timeout=30, what="the checkpoint")
            # Written: the address is on eth1 (verification follows, or the activation
            # is about to end).
            sb.wait_for(lambda: DUPLICATE in nm.addresses(sb, "eth1"), timeout=30,
                        what="the address written")
            sb.kill_nm()
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        (t,) = results(tasks, out, err)
        r = t["result"]
        assert t["status"] == "failed", t
        # Verification's error, or (should NM die before the activation's end) NM's.
        assert r["kind"] in ("Verification", "NetworkManager"), r
        assert (r["rollback"], r["changed"]) == ("rollback-failed", True), r
        assert "the rollback could not run" in r["msg"] and cps[0] in r["msg"], r
        sb.start_nm()


def installed_collection() -> pathlib.Path:
    import mptcpstate
    return pathlib.Path(mptcpstate.__file__).resolve().parents[1] / COLLECTION.relative_to(
        COLLECTIONS)


def test_wheel_ships_the_collection(tmp_path):
    """The installed mptcpstate package has the collection beside it, as in the source
    tree (a stale install fails here: rebuild the wheel), its version the workspace's; and
    Ansible finds it there with no ANSIBLE_COLLECTIONS_PATH pointing at it (it scans
    sys.path), its documentation parsed."""
    ansible_playbook()
    shipped = installed_collection()
    source = {p.relative_to(COLLECTION): p.read_bytes() for p in COLLECTION.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert source, COLLECTION
    installed = {p.relative_to(shipped): p.read_bytes() for p in shipped.rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
    assert installed == source, f"{shipped} differs from {COLLECTION}: rebuild the wheel"

    cargo = (ROOT / "Cargo.toml").read_text()
    version = next(ln.split('"')[1] for ln in cargo.splitlines() if ln.startswith("version"))
    galaxy = (COLLECTION / "galaxy.yml").read_text()
    assert f"\nversion: {version}\n" in galaxy, "galaxy.yml's version is not the workspace's"

    doc = shutil.which("ansible-doc")
    env = ansible_env(None, tmp_path, collections=str(tmp_path / "no-collections"))
    env["PYTHONPATH"] = os.pathsep.join(
        [str(shipped.parents[2])] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.run([doc, "--json", MODULE], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc
    found = json.loads(proc.stdout)[MODULE]
    assert pathlib.Path(found["doc"]["filename"]).resolve() == \
        (shipped / "plugins" / "modules" / "apply.py").resolve()
    # The documented options are the module's.
    assert sorted(found["doc"]["options"]) == sorted(
        ["state", "kernel_only", "verify", "verify_timeout", "rollback_timeout",
         "save_to_disk"])
