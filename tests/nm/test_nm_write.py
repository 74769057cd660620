"""The NetworkManager write layer (rust/src/nm: settings, profile, activation, checkpoint)
against a real NetworkManager in a private sandbox, driven through the example
`rust/examples/nm_write.rs` (build it with
`cargo build --release -p mptcpstate --example nm_write`).

What is proven here is what the apply orchestrator builds on: profiles land where they
should (disk or memory), activation is waited for, a reapply changes endpoints without
taking the device or the link down, checkpoints refuse overlap with Busy and roll back
(by request or by themselves), and the NM quirks the code works around are real.
"""
import json
import os
import pathlib
import subprocess
import time

import pytest

from nmsandbox import Sandbox  # tests/harness, on sys.path through conftest.py

ROOT = pathlib.Path(__file__).resolve().parents[2]

SEED = (ROOT / "tests" / "fixtures" / "seed.yml").read_text()

# NMDeviceState
DISCONNECTED, ACTIVATED = 30, 100


def find_nm_write():
    """$MPTCPSTATE_NM_WRITE, else the newest build of the example in the workspace."""
    path = os.environ.get("MPTCPSTATE_NM_WRITE")
    if path:
        return path
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    builds = [target / p / "examples" / "nm_write" for p in ("release", "debug")]
    builds = [b for b in builds if os.access(b, os.X_OK)]
    if not builds:
        pytest.fail("no nm_write example: run "
                    "`cargo build --release -p mptcpstate --example nm_write`")
    return str(max(builds, key=lambda b: b.stat().st_mtime))


class Writer:
    """Runs nm_write against one sandbox's NetworkManager."""

    def __init__(self, exe, sb, tmp_path):
        self.exe, self.sb, self.tmp = exe, sb, tmp_path

    def run(self, *args):
        """(exit status, stdout JSON or None, stderr error JSON or None)."""
        proc = self.sb.run([self.exe, *map(str, args)], check=False)
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
        err = None
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
            err = json.loads(last) if last.startswith("{") else {"raw": proc.stderr}
        return proc.returncode, out, err

    def __call__(self, *args):
        rc, out, err = self.run(*args)
        assert rc == 0, f"nm_write {' '.join(map(str, args))}: exit {rc}: {err}"
        return out

    def state_file(self, yaml, name="state.yml"):
        path = self.tmp / name
        path.write_text(yaml)
        return str(path)

    def profile_settings(self, ifname):
        return self("lookup", ifname)["profile"]["settings"]

    def device_state(self, ifname):
        return self("lookup", ifname)["device"]["state"]


@pytest.fixture(scope="session")
def nm_write_exe():
    return find_nm_write()


@pytest.fixture
def sb(require_nm):
    with Sandbox(["eth1", "eth2"]) as sandbox:
        yield sandbox


@pytest.fixture
def nmw(nm_write_exe, sb, tmp_path):
    return Writer(nm_write_exe, sb, tmp_path)


def flags_state(ifname, flags):
    return (f"interfaces:\n  - name: {ifname}\n    mptcp:\n"
            f"      address-flags: [{', '.join(flags)}]\n")


def endpoints_of(sb, ifname):
    return sorted((e["address"], tuple(e["flags"])) for e in sb.endpoints() if e["dev"] == ifname)


def wait_endpoints(sb, ifname, expected, timeout=10):
    expected = sorted((a, tuple(sorted(f))) for a, f in expected)
    return sb.wait_for(lambda: endpoints_of(sb, ifname) == expected, timeout=timeout,
                       what=f"endpoints {expected} on {ifname} (have {endpoints_of(sb, ifname)})")


def keyfile(sb, ifname):
    path = pathlib.Path(sb.keyfile_dir) / f"{ifname}.nmconnection"
    return path.read_text() if path.exists() else None


def seed_active(nmw, sb):
    """The seed's profile for eth1, on disk and active, with its endpoint."""
    nmw("add", nmw.state_file(SEED, "seed.yml"))
    nmw("activate", "eth1")
    wait_endpoints(sb, "eth1", [("192.0.2.2", ["signal", "subflow"])])


class Monitor:
    """`ip monitor link address` in the sandbox, and the device's NM state signals, both
    running in the background for the length of a `with` block."""

    def __init__(self, nmw, ifname, watch_ms=2500):
        self.nmw, self.ifname, self.watch_ms = nmw, ifname, watch_ms

    def __enter__(self):
        sb = self.nmw.sb
        self.ip = subprocess.Popen(["ip", "netns", "exec", sb.netns, "ip", "-o", "monitor",
                                    "link", "address"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.watch = subprocess.Popen(["ip", "netns", "exec", sb.netns, self.nmw.exe, "watch",
                                       self.ifname, str(self.watch_ms)],
                                      env=sb.env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
        # The watcher says so once its D-Bus subscription is in place.
        assert self.watch.stderr.readline().strip() == "watching"
        time.sleep(0.3)  # `ip monitor` has no such signal: give it time to subscribe
        return self

    def __exit__(self, *exc):
        sb = self.nmw.sb
        # A control event: proves the monitor was listening all along.
        sb.ip("link", "set", "eth2", "mtu", "1400")
        time.sleep(0.3)
        self.ip.terminate()
        self.ip_lines = self.ip.communicate(timeout=5)[0].splitlines()
        out, _ = self.watch.communicate(timeout=self.watch_ms / 1000 + 10)
        self.state_changes = json.loads(out)["state_changes"]
        assert any("eth2" in line and "mtu 1400" in line for line in self.ip_lines), \
            self.ip_lines

    def lines_of(self, ifname):
        return [line for line in self.ip_lines if f" {ifname}" in line or f"{ifname}@" in line]


# ---------------------------------------------------------------------------------------
# profiles


def test_add_on_disk_and_in_memory(nmw, sb):
    seed = nmw.state_file(SEED)
    # In memory: no keyfile where profiles are kept; NM 1.42 keeps it in its run dir.
    (added,) = nmw("add", "--memory", seed)
    assert added["changed"] == []
    storage = nmw("storage", "eth1")
    assert storage["filename"].startswith("/run/NetworkManager/"), storage
    assert keyfile(sb, "eth1") is None
    nmw("delete", "eth1")
    assert nmw("lookup", "eth1")["profile"] is None

    nmw("add", seed)
    storage = nmw("storage", "eth1")
    assert storage == {"filename": f"{sb.keyfile_dir}/eth1.nmconnection", "unsaved": False}
    text = keyfile(sb, "eth1")
    assert "mptcp-flags=56\n" in text and "address1=192.0.2.2/24" in text
    found = nmw("lookup", "eth1")
    # The UUID is the one the offline keyfiles get: derived from the name.
    assert found["profile"]["uuid"] == "04f0b2b9-5e2c-5731-9f0a-fe35d76c4c81"
    assert f"uuid={found['profile']['uuid']}\n" in text
    conn = found["profile"]["settings"]["connection"]
    assert conn["type"] == "802-3-ethernet" and conn["interface-name"] == "eth1"
    assert conn["mptcp-flags"] == 56
    # BLOCK_AUTOCONNECT: NM does not activate the new profile by itself.
    time.sleep(1.5)
    assert nmw.device_state("eth1") == DISCONNECTED
    assert endpoints_of(sb, "eth1") == []


def test_independent_interfaces_at_once(nmw, sb):
    """The example joins the work of all interfaces of a state: both land."""
    state = nmw.state_file(SEED + """  - name: eth2
    type: ethernet
    mptcp: {address-flags: [subflow]}
    ipv4: {address: [{ip: 198.51.100.2, prefix-length: 24}]}
""")
    added = nmw("add", state)
    assert [a["interface"] for a in added] == ["eth1", "eth2"]
    # One batch of activations; each item has its own outcome.
    out = nmw("activate-many", "eth1", "eth2")
    assert [("active" in r, r["item"]) for r in out["results"]] == [(True, "eth1"),
                                                                     (True, "eth2")], out
    wait_endpoints(sb, "eth1", [("192.0.2.2", ["signal", "subflow"])])
    wait_endpoints(sb, "eth2", [("198.51.100.2", ["subflow"])])
    listing = nmw("list", "eth2")
    assert [p["id"] for p in listing["profiles"]] == ["eth2"]


def test_activate_waits_and_reports(nmw, sb):
    seed_active(nmw, sb)
    found = nmw("lookup", "eth1")
    assert found["device"]["state"] == ACTIVATED
    assert found["applied"]["uuid"] == found["profile"]["uuid"]
    assert found["applied"]["mptcp_flags"] == 56
    assert found["applied"]["version_id"] > 0


def test_activation_batch_reports_each_item(nmw, sb):
    """A refused item (eth1's profile on eth2: interface-name does not match) fails
    alone; the other item of the batch is activated."""
    nmw("add", nmw.state_file(SEED))
    out = nmw("activate-many", "eth2=eth1", "eth1")
    bad, good = out["results"]
    assert bad["kind"] == "NetworkManager" and "org.freedesktop.NetworkManager" in \
        bad["message"], bad
    assert "active" in good, good
    wait_endpoints(sb, "eth1", [("192.0.2.2", ["signal", "subflow"])])


def test_activation_timeout_and_failure(nmw, sb):
    """DHCP with no server: still activating when our timeout ends (Timeout), then a
    failure NM reports after its own DHCP timeout (NetworkManager, with the reason)."""
    nmw("add", nmw.state_file("interfaces:\n- name: eth2\n  ipv4: {dhcp: true}\n"))
    rc, _, err = nmw.run("activate", "eth2", "--timeout", "1")
    assert rc == 7 and err["kind"] == "Timeout", err
    nmw("deactivate", "eth2")
    sb.nmcli("connection", "modify", "eth2", "ipv4.dhcp-timeout", "2", "ipv4.may-fail", "no")
    rc, _, err = nmw.run("activate", "eth2", "--timeout", "20")
    assert rc == 4 and err["kind"] == "NetworkManager", err
    # NM's reason is kept; which one NM reports depends on timing (the device's "no IP
    # configuration could be obtained", or the active connection's "the device
    # disconnected" when the deactivation above is still settling).
    assert " failed: " in err["message"] and "StateReason" in err["message"], err


def test_deactivate_keeps_profile_delete_removes_it(nmw, sb):
    seed_active(nmw, sb)
    nmw("deactivate", "eth1")
    assert nmw.device_state("eth1") == DISCONNECTED
    wait_endpoints(sb, "eth1", [])
    assert nmw("lookup", "eth1")["profile"] is not None
    nmw("activate", "eth1")
    wait_endpoints(sb, "eth1", [("192.0.2.2", ["signal", "subflow"])])
    nmw("disconnect", "eth1")
    assert nmw.device_state("eth1") == DISCONNECTED
    nmw("activate", "eth1")
    nmw("delete", "eth1")
    assert nmw("lookup", "eth1")["profile"] is None
    assert keyfile(sb, "eth1") is None
    sb.wait_for(lambda: nmw.device_state("eth1") == DISCONNECTED, what="eth1 disconnected")
    wait_endpoints(sb, "eth1", [])


# ---------------------------------------------------------------------------------------
# update + reapply


def test_reapply_changes_flags_without_a_bounce(nmw, sb):
    seed_active(nmw, sb)
    before = nmw("lookup", "eth1")["applied"]["version_id"]
    (upd,) = nmw("update", nmw.state_file(flags_state("eth1", ["subflow", "backup"])))
    # Only the key the state sets changed.
    assert upd["changed"] == ["connection.mptcp-flags"]
    assert "mptcp-flags=104\n" in keyfile(sb, "eth1")
    with Monitor(nmw, "eth1") as mon:
        out = nmw("reapply", "eth1")
        wait_endpoints(sb, "eth1", [("192.0.2.2", ["backup", "subflow"])])
    assert out["outcome"] == "done"
    assert out["version_after"] == before + 1
    # The device never left ACTIVATED, and the kernel saw nothing happen to eth1's link
    # or addresses (NM may leave the link up through a deactivation: both are watched).
    assert mon.state_changes == []
    assert mon.lines_of("eth1") == [], mon.ip_lines
    assert nmw.device_state("eth1") == ACTIVATED


def test_reapply_changes_addresses(nmw, sb):
    seed_active(nmw, sb)
    state = nmw.state_file("""interfaces:
  - name: eth1
    ipv4:
      address:
        - {ip: 192.0.2.5, prefix-length: 24}
        - {ip: 192.0.2.6, prefix-length: 24}
""")
    (upd,) = nmw("update", state)
    assert upd["changed"] == ["ipv4.address-data"]
    with Monitor(nmw, "eth1") as mon:
        assert nmw("reapply", "eth1")["outcome"] == "done"
        wait_endpoints(sb, "eth1", [("192.0.2.5", ["signal", "subflow"]),
                                    ("192.0.2.6", ["signal", "subflow"])])
    assert mon.state_changes == []
    # Addresses came and went; the link itself did not change.
    assert not [l for l in mon.lines_of("eth1") if "link/" in l or "state DOWN" in l], \
        mon.ip_lines
    assert sorted(a["local"] for a in sb.ip("-j", "addr", "show", "eth1", json=True)[0]
                  ["addr_info"] if a["family"] == "inet") == ["192.0.2.5", "192.0.2.6"]


def test_reapply_refusals(nmw, sb):
    seed_active(nmw, sb)
    # Someone changed the device after we read its version: NM refuses, named.
    nmw("reapply", "eth1")
    rc, _, err = nmw.run("reapply", "eth1", "--version-id", "1")
    assert rc == 4 and "org.freedesktop.NetworkManager.Device.VersionIdMismatch" in \
        err["message"], err
    # A change NM cannot make live: the caller is told to activate instead.
    sb.nmcli("connection", "modify", "eth1", "802-3-ethernet.cloned-mac-address",
             "02:00:00:00:00:01")
    out = nmw("reapply", "eth1")
    assert out["outcome"].startswith("needs-activation: "
                                     "org.freedesktop.NetworkManager.Device."
                                     "IncompatibleConnection"), out


def test_deprecated_keys_would_hide_the_change(nmw, sb):
    """Why settings.rs drops `addresses`/`routes`: sent back beside `address-data`, NM
    1.42 prefers the deprecated key, and the new addresses are silently ignored."""
    nmw("add", nmw.state_file(SEED))
    state = nmw.state_file("interfaces:\n- name: eth1\n  ipv4:\n"
                           "    address: [{ip: 192.0.2.9, prefix-length: 24}]\n")
    nmw("update", "--keep-legacy", state)
    addrs = nmw.profile_settings("eth1")["ipv4"]["address-data"]
    assert [a["address"] for a in addrs] == ["192.0.2.2"], "NM took address-data after all"
    nmw("update", state)
    addrs = nmw.profile_settings("eth1")["ipv4"]["address-data"]
    assert [a["address"] for a in addrs] == ["192.0.2.9"]


def test_foreign_profile_is_found_and_changed_least(nmw, sb):
    """A profile made by nmcli, active on eth1: found through the device, changed in the
    one key the state sets; its route with a table attribute (which the deprecated
    `routes` key cannot carry) survives. `GetSettings` sent back as it came is accepted
    by Update2 (no key in it is refused), but loses that attribute: the daemon reads
    the deprecated `routes` twin."""
    sb.nmcli("connection", "add", "type", "ethernet", "ifname", "eth1", "con-name", "mine",
             "ipv4.method", "manual", "ipv4.addresses", "192.0.2.2/24",
             "ipv4.gateway", "192.0.2.1", "ipv4.routes", "198.51.100.0/24 192.0.2.1 table=100",
             "ipv6.method", "disabled", "connection.mptcp-flags", "0x38")
    sb.nmcli("connection", "up", "mine")
    found = nmw("lookup", "eth1")
    assert found["profile"]["id"] == "mine"
    assert found["applied"]["uuid"] == found["profile"]["uuid"]

    (same,) = nmw("desired", nmw.state_file("interfaces:\n- name: eth1\n"))
    assert same["changed"] == []
    (upd,) = nmw("update", nmw.state_file(flags_state("eth1", ["subflow"])))
    assert upd["changed"] == ["connection.mptcp-flags"]
    routes = sb.nmcli("-g", "ipv4.routes,ipv4.gateway,connection.id", "connection", "show",
                      "mine").stdout.splitlines()
    assert routes == ["198.51.100.0/24 192.0.2.1 table=100", "192.0.2.1", "mine"], routes
    assert nmw("reapply", "eth1")["outcome"] == "done"
    wait_endpoints(sb, "eth1", [("192.0.2.2", ["subflow"])])

    nmw("roundtrip", "eth1")
    routes = sb.nmcli("-g", "ipv4.routes", "connection", "show", "mine").stdout.strip()
    assert routes == "198.51.100.0/24 192.0.2.1", "NM kept the table: the quirk is gone"


def test_block_autoconnect_on_update_outlives_a_reapply(nmw, sb):
    """Why `profile::update` takes `block_autoconnect` and the reapply path must pass
    false: the block is lifted by an activation only. Set on a profile that is reapplied,
    NM does not bring it back after the carrier goes and returns."""

    def bounce():
        # NM notices a lost carrier only after about 6 s (it defers the action).
        sb.peer_ip("link", "set", "eth1", "down")
        sb.wait_for(lambda: nmw.device_state("eth1") < ACTIVATED, timeout=20,
                    what="eth1 losing its carrier")
        sb.peer_ip("link", "set", "eth1", "up")

    seed_active(nmw, sb)
    nmw("update", nmw.state_file(flags_state("eth1", ["subflow"])))
    nmw("reapply", "eth1")
    bounce()
    sb.wait_for(lambda: nmw.device_state("eth1") == ACTIVATED, timeout=20,
                what="NM re-activating eth1 after the carrier came back")

    nmw("update", "--block-autoconnect", nmw.state_file(flags_state("eth1", ["signal"])))
    nmw("reapply", "eth1")
    bounce()
    # NM re-activated it above within ~40 ms of the carrier's return; give it 50 times that.
    time.sleep(2)
    assert nmw.device_state("eth1") == DISCONNECTED


# ---------------------------------------------------------------------------------------
# checkpoints


def checkpoint_paths(nmw):
    return [c["path"] for c in nmw("checkpoints")]


def test_checkpoint_busy_and_rollback(nmw, sb):
    seed_active(nmw, sb)
    cp = nmw("checkpoint-create", "--timeout", "120", "eth1")["checkpoint"]
    (info,) = nmw("checkpoints")
    assert info["path"] == cp and info["rollback_timeout"] == 120
    assert 110 <= info["seconds_left"] <= 120

    # Overlap: Busy, naming the holder; NM's own refusal is InvalidArguments.
    for devices in (["eth1"], ["eth2", "eth1"]):
        rc, _, err = nmw.run("checkpoint-create", *devices)
        assert rc == 8 and err["kind"] == "Busy", err
        assert f"eth1 is held by checkpoint {cp}" in err["message"], err
    # Disjoint devices: side by side.
    other = nmw("checkpoint-create", "eth2")["checkpoint"]
    assert sorted(checkpoint_paths(nmw)) == sorted([cp, other])
    nmw("checkpoint-destroy", other)

    nmw("update", nmw.state_file(flags_state("eth1", ["subflow", "backup"])))
    nmw("reapply", "eth1")
    wait_endpoints(sb, "eth1", [("192.0.2.2", ["backup", "subflow"])])

    out = nmw("checkpoint-rollback", cp)
    assert out["failures"] is None and [r[1] for r in out["results"]] == [0], out
    wait_endpoints(sb, "eth1", [("192.0.2.2", ["signal", "subflow"])])
    assert nmw.profile_settings("eth1")["connection"]["mptcp-flags"] == 56
    assert "mptcp-flags=56\n" in keyfile(sb, "eth1")
    assert nmw.device_state("eth1") == ACTIVATED
    # Rolled back means gone: a second commit or rollback names it as not existing.
    assert checkpoint_paths(nmw) == []
    rc, _, err = nmw.run("checkpoint-destroy", cp)
    assert rc == 1 and "no such checkpoint" in err["message"], err


def test_checkpoint_destroy_keeps_the_change(nmw, sb):
    seed_active(nmw, sb)
    cp = nmw("checkpoint-create", "eth1")["checkpoint"]
    nmw("update", nmw.state_file(flags_state("eth1", ["subflow"])))
    nmw("reapply", "eth1")
    nmw("checkpoint-destroy", cp)
    assert checkpoint_paths(nmw) == []
    wait_endpoints(sb, "eth1", [("192.0.2.2", ["subflow"])])
    # Free again.
    nmw("checkpoint-destroy", nmw("checkpoint-create", "eth1")["checkpoint"])


def test_checkpoint_rolls_back_by_itself(nmw, sb):
    seed_active(nmw, sb)
    cp = nmw("checkpoint-create", "--timeout", "30", "eth1")["checkpoint"]
    nmw("checkpoint-adjust", cp, "2")  # from now, not added
    nmw("update", nmw.state_file(flags_state("eth1", ["subflow"])))
    nmw("reapply", "eth1")
    wait_endpoints(sb, "eth1", [("192.0.2.2", ["subflow"])])
    sb.wait_for(lambda: checkpoint_paths(nmw) == [], timeout=15, what="NM's own rollback")
    wait_endpoints(sb, "eth1", [("192.0.2.2", ["signal", "subflow"])])
    assert nmw.profile_settings("eth1")["connection"]["mptcp-flags"] == 56


def test_checkpoint_keeps_new_profiles(nmw, sb):
    """The library's checkpoints are made without DELETE_NEW_CONNECTIONS (that flag deletes
    every profile added after the checkpoint, also by applies on other devices, committed
    or not): a profile added under the checkpoint outlives its rollback, and the
    library's undo record deletes the profiles its own apply added
    (tests/nm/test_apply.py::test_rollback_keeps_profiles_added_beside_it)."""
    cp = nmw("checkpoint-create", "eth2")["checkpoint"]
    nmw("add", nmw.state_file(flags_state("eth2", ["signal"]).rstrip("\n") +
                              "\n    ipv4: {address: [{ip: 198.51.100.2, prefix-length: 24}]}\n"))
    nmw("activate", "eth2")
    wait_endpoints(sb, "eth2", [("198.51.100.2", ["signal"])])
    assert keyfile(sb, "eth2") is not None
    nmw("checkpoint-rollback", cp)
    assert nmw("lookup", "eth2")["profile"] is not None
    assert keyfile(sb, "eth2") is not None
    nmw("delete", "eth2")
    assert nmw("lookup", "eth2")["profile"] is None
    wait_endpoints(sb, "eth2", [])


def test_checkpoint_restores_a_deleted_active_profile_only(nmw, sb):
    """What a checkpoint holds: the profile active on its device. Deleted under it, the
    profile comes back (keyfile included); a profile that was not active is not held,
    and a change to it stays after the rollback."""
    seed_active(nmw, sb)
    cp = nmw("checkpoint-create", "eth1")["checkpoint"]
    nmw("delete", "eth1")
    assert keyfile(sb, "eth1") is None
    nmw("checkpoint-rollback", cp)
    assert "mptcp-flags=56\n" in keyfile(sb, "eth1")
    wait_endpoints(sb, "eth1", [("192.0.2.2", ["signal", "subflow"])])

    nmw("add", nmw.state_file(flags_state("eth2", ["signal"])))
    cp = nmw("checkpoint-create", "eth2")["checkpoint"]
    nmw("update", nmw.state_file(flags_state("eth2", ["subflow"])))
    nmw("checkpoint-rollback", cp)
    assert nmw.profile_settings("eth2")["connection"]["mptcp-flags"] == 0x28
