"""`mptcpstatectl service`, the boot-time service (README "Boot-time service"), run in
sandbox namespaces (no systemd): a directory of good and bad state files applied in name
order, through a private NetworkManager and kernel-only; the record; a second run; an
empty and a missing directory; the systemd units as installed by rust/cli/install.sh."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))
from nmsandbox import Sandbox  # noqa: E402

GOOD_ETH1 = """\
interfaces:
  - name: eth1
    type: ethernet
    state: up
    mptcp:
      address-flags: [subflow, signal]
    ipv4:
      enabled: true
      dhcp: false
      address:
        - ip: 192.0.2.2
          prefix-length: 24
"""
# Invalid: refused by validation.
BAD_SCHEMA = "interfaces:\n- name: eth1\n  mptcp:\n    adress-flags: []\n"
# Valid, but fails at apply time: eth9 does not exist; eth2 must not be written either.
MISSING_LINK = """\
interfaces:
  - name: eth2
    type: ethernet
    state: up
    ipv4:
      enabled: true
      dhcp: false
      address:
        - ip: 198.51.100.2
          prefix-length: 24
  - name: eth9
    type: ethernet
    state: up
"""
GOOD_ETH3_KNOBS = """\
mptcp:
  limits:
    subflows: 4
interfaces:
  - name: eth3
    type: ethernet
    state: up
    mptcp:
      address-flags: [subflow]
    ipv4:
      enabled: true
      dhcp: false
      address:
        - ip: 203.0.113.2
          prefix-length: 24
"""
TWIN = MISSING_LINK.split("  - name: eth9")[0]


def service(sb, cli, *args, env=None):
    kw = {"env": env} if env is not None else {}
    proc = sb.run([cli, "service", *map(str, args)], check=False, timeout=120, **kw)
    lines = proc.stdout.splitlines()
    assert lines, proc
    last = lines[-1]
    assert last.startswith("service: ") and "; record: " in last, proc
    record_path = pathlib.Path(last.split("; record: ", 1)[1])
    record = json.loads(record_path.read_text())
    assert oct(record_path.stat().st_mode & 0o777) == "0o600"
    return proc, lines[:-1], record, record_path


def results(record):
    return [(f["file"], f["result"], f.get("kind")) for f in record["files"]]


def endpoints(sb):
    return sorted((e["address"], tuple(f for f in e["flags"] if f != "implicit"), e["dev"])
                  for e in sb.endpoints() if "implicit" not in e["flags"])


def addresses(sb, dev):
    return sorted(a["local"] for link in sb.ip("addr", "show", "dev", dev, json=True)
                  for a in link.get("addr_info", []) if a["family"] == "inet")


def pending_records(record_path):
    return sorted(p.name for p in record_path.parent.glob("checkpoint-*"))


def nm_snapshot(sb):
    keyfiles = {p.name: p.read_bytes() for p in sorted(pathlib.Path(sb.keyfile_dir).iterdir())}
    profiles = sb.nmcli("-t", "-f", "NAME,UUID,DEVICE", "connection", "show").stdout
    return {"keyfiles": keyfiles, "profiles": profiles, "endpoints": endpoints(sb),
            "addresses": {d: addresses(sb, d) for d in ("eth1", "eth2", "eth3")},
            "limits": sb.mptcp_limits()}


def nm_checkpoints(sb):
    out = subprocess.run(
        ["busctl", f"--address={sb.bus_address}", "get-property",
         "org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager",
         "org.freedesktop.NetworkManager", "Checkpoints"],
        capture_output=True, text=True, check=True, timeout=30).stdout.split()
    return out[2:]


def cleanup(record_path):
    """The service's record is this test's: removed, with the namespace's directory if
    nothing else is in it (the tests assert that no undo record is pending)."""
    record_path.unlink(missing_ok=True)
    try:
        record_path.parent.rmdir()
    except OSError:
        pass


def test_service_networkmanager(require_nm, cli, tmp_path):
    d = tmp_path / "etc-mptcpstate"
    d.mkdir()
    (d / "10-eth1.yml").write_text(GOOD_ETH1)
    (d / "20-bad.yml").write_text(BAD_SCHEMA)
    (d / "30-missing.yaml").write_text(MISSING_LINK)
    (d / "40-eth3.yml").write_text(GOOD_ETH3_KNOBS)
    (d / "50-twin.yml").write_text(TWIN)
    (d / "50-twin.yaml").write_text(TWIN)
    # Not state files: ignored.
    (d / ".10-eth1.yml.swp").write_text(BAD_SCHEMA)
    (d / ".hidden.yml").write_text(BAD_SCHEMA)
    (d / "notes.txt").write_text(BAD_SCHEMA)
    (d / "00-old.applied").write_text(BAD_SCHEMA)
    with Sandbox(["eth1", "eth2", "eth3"]) as sb:
        before_limits = sb.mptcp_limits()
        assert before_limits["subflows"] != 4
        proc, lines, record, record_path = service(sb, cli, "--dir", d)
        try:
            # The first failure's code: InvalidArgument (1); the others still ran.
            assert proc.returncode == 1, proc.stdout + proc.stderr
            expected = [("10-eth1.yml", "applied", None), ("20-bad.yml", "failed", "InvalidArgument"),
                        ("30-missing.yaml", "failed", "InvalidArgument"),
                        ("40-eth3.yml", "applied", None),
                        ("50-twin.yaml", "failed", "InvalidArgument"),
                        ("50-twin.yml", "failed", "InvalidArgument")]
            assert results(record) == expected
            assert [line.split(":")[0] for line in lines] == [f for f, _, _ in expected]
            assert lines[0] == "10-eth1.yml: applied: eth1 changed"
            assert lines[1].startswith("20-bad.yml: failed: InvalidArgument: ") and \
                "adress-flags" in lines[1]
            assert "eth9 does not exist" in lines[2]
            assert lines[3] == "40-eth3.yml: applied: eth3, mptcp.limits changed"
            assert "both exist" in lines[4] and "both exist" in lines[5]
            assert record["mode"] == "networkmanager" and record["dir"] == str(d)
            assert (record["applied"], record["failed"], record["exit-status"]) == (2, 4, 1)
            assert record["files"][0]["changed"] == ["eth1"]
            assert record["files"][3]["changed"] == ["eth3"]
            assert record["files"][3]["host"] == ["mptcp.limits"]
            assert record["files"][1]["code"] == 1
            # The good ones are applied: NM profiles, kernel endpoints, the knob.
            assert endpoints(sb) == [("192.0.2.2", ("signal", "subflow"), "eth1"),
                                     ("203.0.113.2", ("subflow",), "eth3")]
            assert sb.nmcli("-g", "connection.mptcp-flags", "connection", "show",
                            "eth1").stdout.strip() == "0x38"
            assert sb.mptcp_limits()["subflows"] == 4
            # Nothing of the bad ones: no address or profile on eth2.
            assert addresses(sb, "eth2") == []
            devices = sb.nmcli("-t", "-f", "DEVICE", "connection", "show").stdout.split()
            assert "eth2" not in devices and "eth9" not in devices
            # Nothing left pending.
            assert pending_records(record_path) == []
            assert nm_checkpoints(sb) == []
            assert sorted(p.name for p in d.iterdir()) == sorted(
                ["10-eth1.yml", "20-bad.yml", "30-missing.yaml", "40-eth3.yml", "50-twin.yml",
                 "50-twin.yaml", ".10-eth1.yml.swp", ".hidden.yml", "notes.txt",
                 "00-old.applied"])

            # The next boot applies the same files again: the good ones change nothing.
            snap = nm_snapshot(sb)
            proc2, lines2, record2, _ = service(sb, cli, "--dir", d)
            assert proc2.returncode == 1
            assert results(record2) == expected
            assert lines2[0] == "10-eth1.yml: applied: nothing to change"
            assert lines2[3] == "40-eth3.yml: applied: nothing to change"
            assert nm_snapshot(sb) == snap

            # nmstate's behaviour on request: applied files renamed, not applied again.
            proc3, lines3, record3, _ = service(sb, cli, "--dir", d, "--rename-applied")
            assert proc3.returncode == 1
            assert lines3[0] == "10-eth1.yml: applied: nothing to change; renamed to 10-eth1.applied"
            assert record3["files"][0]["renamed-to"] == str(d / "10-eth1.applied")
            assert record3["files"][1].get("renamed-to") is None
            assert (d / "10-eth1.applied").read_text() == GOOD_ETH1
            assert (d / "40-eth3.applied").read_text() == GOOD_ETH3_KNOBS
            assert not (d / "10-eth1.yml").exists() and (d / "20-bad.yml").exists()
            proc4, _, record4, _ = service(sb, cli, "--dir", d, "--rename-applied")
            assert proc4.returncode == 1
            assert [f for f, _, _ in results(record4)] == [
                "20-bad.yml", "30-missing.yaml", "50-twin.yaml", "50-twin.yml"]
            assert nm_snapshot(sb) == snap
        finally:
            cleanup(record_path)


def test_service_kernel_without_networkmanager(cli, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to make network namespaces")
    d = tmp_path / "etc-mptcpstate"
    d.mkdir()
    kernel_eth1 = GOOD_ETH1.replace("          prefix-length: 24\n",
                                    "          prefix-length: 24\n"
                                    "          mptcp-flags: [signal]\n")
    (d / "10-eth1.yml").write_text(kernel_eth1)
    (d / "20-dhcp.yml").write_text(
        "interfaces:\n- name: eth2\n  type: ethernet\n  state: up\n"
        "  ipv4:\n    enabled: true\n    dhcp: true\n")
    (d / "30-bad.yml").write_text(BAD_SCHEMA)
    (d / "40-knobs.yml").write_text("mptcp:\n  limits:\n    subflows: 5\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("not a state file\n")
    with Sandbox(["eth1", "eth2"], nm=False) as sb:
        env = dict(sb.env(), DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={sb.dir}/no-such-bus")
        eth2_before = sb.ip("addr", "show", "dev", "eth2", json=True)
        proc, lines, record, record_path = service(sb, cli, "--kernel", "--dir", d, env=env)
        try:
            # The first failure is NotSupported (2), before the InvalidArgument one.
            assert proc.returncode == 2, proc.stdout + proc.stderr
            assert results(record) == [("10-eth1.yml", "applied", None),
                                       ("20-dhcp.yml", "failed", "NotSupported"),
                                       ("30-bad.yml", "failed", "InvalidArgument"),
                                       ("40-knobs.yml", "applied", None)]
            assert lines[0] == "10-eth1.yml: applied: eth1 changed"
            assert lines[3] == "40-knobs.yml: applied: mptcp.limits changed"
            assert record["mode"] == "kernel" and record["exit-status"] == 2
            assert endpoints(sb) == [("192.0.2.2", ("signal",), "eth1")]
            assert addresses(sb, "eth1") == ["192.0.2.2"]
            assert sb.ip("addr", "show", "dev", "eth2", json=True) == eth2_before
            assert sb.mptcp_limits()["subflows"] == 5
            assert pending_records(record_path) == []

            # Kernel state is runtime state: every boot applies the files again.
            proc2, lines2, record2, _ = service(sb, cli, "--kernel", "--dir", d, env=env)
            assert proc2.returncode == 2
            assert lines2[0] == "10-eth1.yml: applied: nothing to change"
            assert endpoints(sb) == [("192.0.2.2", ("signal",), "eth1")]

            # An empty directory, and a missing one: nothing to do, exit 0, recorded.
            eps = endpoints(sb)
            for where in (empty, tmp_path / "no-such-dir"):
                proc3, lines3, record3, _ = service(sb, cli, "--kernel", "--dir", where, env=env)
                assert proc3.returncode == 0, proc3
                assert lines3 == [f"no state files (*.yml, *.yaml) in {where}"]
                assert record3["files"] == [] and record3["exit-status"] == 0
                assert endpoints(sb) == eps
            # A path that is not a directory is an error of the command itself.
            proc4 = sb.run([cli, "service", "--kernel", "--dir", str(d / "10-eth1.yml")],
                           check=False, env=env)
            assert proc4.returncode == 1 and "cannot list" in proc4.stderr, proc4
        finally:
            cleanup(record_path)


UNITS = ("mptcpstate.service", "mptcpstate-kernel.service")


@pytest.fixture(scope="module")
def installed(cli, tmp_path_factory):
    """The CLI and its units installed by rust/cli/install.sh into a temporary prefix."""
    prefix = tmp_path_factory.mktemp("prefix")
    target = pathlib.Path(cli).resolve().parents[1]
    subprocess.run(["sh", str(ROOT / "rust/cli/install.sh"), "--no-build", str(prefix)],
                   check=True, capture_output=True, timeout=60,
                   env=dict(os.environ, CARGO_TARGET_DIR=str(target)))
    return prefix


def unit_keys(path):
    """`[Section] Key=value` of a unit file, as {(section, key): [values]}."""
    keys, section = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, v = line.split("=", 1)
        keys.setdefault((section, k), []).append(v)
    return keys


def test_units_installed_with_their_ordering(installed):
    bindir = installed / "bin"
    assert os.access(bindir / "mptcpstatectl", os.X_OK)
    nm = unit_keys(installed / "lib/systemd/system/mptcpstate.service")
    assert nm[("Unit", "After")] == ["NetworkManager.service"]
    assert nm[("Unit", "Requires")] == ["NetworkManager.service"]
    assert nm[("Unit", "Before")] == ["network-online.target"]
    assert nm[("Service", "Type")] == ["oneshot"]
    assert nm[("Service", "RemainAfterExit")] == ["yes"]
    assert nm[("Service", "ExecStart")] == [f"{bindir}/mptcpstatectl service --dir /etc/mptcpstate"]
    assert nm[("Install", "WantedBy")] == ["NetworkManager.service"]
    k = unit_keys(installed / "lib/systemd/system/mptcpstate-kernel.service")
    assert k[("Unit", "After")] == ["network-pre.target systemd-udev-trigger.service "
                                    "systemd-sysctl.service"]
    assert k[("Unit", "Before")] == ["network.target network-online.target"]
    assert k[("Unit", "Conflicts")] == ["mptcpstate.service"]
    assert k[("Service", "ExecStart")] == [
        f"{bindir}/mptcpstatectl service --kernel --dir /etc/mptcpstate"]
    assert k[("Service", "Type")] == ["oneshot"]
    assert k[("Install", "WantedBy")] == ["multi-user.target"]


@pytest.mark.allowed_skip_in_ci("systemd-analyze is not installed on every machine")
def test_units_pass_systemd_analyze_verify(installed):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze")
    units = [str(installed / "lib/systemd/system" / u) for u in UNITS]
    proc = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True,
                          text=True, timeout=60)
    # Only what concerns these units (verify also reads the system's own units).
    ours = [line for line in (proc.stdout + proc.stderr).splitlines()
            if "mptcpstate" in line]
    assert proc.returncode == 0 and not ours, proc


def test_service_sigterm_rolls_back_and_stops(cli, tmp_path):
    """SIGTERM (`systemctl stop`) while a file's apply waits for verification: that apply
    is rolled back, the files after it are reported interrupted, not applied. The wait is
    real: the peer holds the IPv6 address the file gives eth1 (nodad), so the kernel's
    duplicate address detection fails and verification polls until stopped."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make network namespaces")
    d = tmp_path / "etc-mptcpstate"
    d.mkdir()
    (d / "10-dad.yml").write_text(
        "interfaces:\n- name: eth1\n  type: ethernet\n  state: up\n"
        "  mptcp:\n    address-flags: [subflow]\n"
        "  ipv6:\n    enabled: true\n    dhcp: false\n    autoconf: false\n"
        "    address:\n    - ip: 2001:db8:9::1\n      prefix-length: 64\n")
    (d / "20-later.yml").write_text("mptcp:\n  limits:\n    subflows: 6\n")
    with Sandbox(["eth1"], nm=False) as sb:
        sb.peer_ip("addr", "add", "2001:db8:9::1/64", "dev", sb.peer_veths[0], "nodad")
        env = dict(sb.env(), DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={sb.dir}/no-such-bus")
        before = (sb.ip("addr", "show", json=True), endpoints(sb), sb.mptcp_limits())
        # `ip netns exec` execs the command: the PID is the service's.
        proc = subprocess.Popen(["ip", "netns", "exec", sb.netns, cli, "service", "--kernel",
                                 "--dir", str(d)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        record_path = None
        try:
            sb.wait_for(lambda: "2001:db8:9::1" in addresses6(sb, "eth1"), timeout=20,
                        what="the apply writing the address")
            proc.send_signal(15)
            out, err = proc.communicate(timeout=30)
            lines = out.splitlines()
            record_path = pathlib.Path(lines[-1].split("; record: ", 1)[1])
            record = json.loads(record_path.read_text())
            assert proc.returncode == 7, out + err  # Timeout
            assert results(record) == [("10-dad.yml", "failed", "Timeout"),
                                       ("20-later.yml", "failed", "Timeout")]
            assert "interrupted" in lines[0], lines
            assert lines[1] == ("20-later.yml: failed: Timeout: interrupted before this file "
                                "was applied")
            after = (sb.ip("addr", "show", json=True), endpoints(sb), sb.mptcp_limits())
            # The kernel's own link-local address comes with the link (it may not be there
            # yet at the first look): what the apply writes is global.
            def strip(snap):
                return [(link["ifname"], sorted(a["local"] for a in link.get("addr_info", [])
                                                if a.get("scope") != "link"))
                        for link in snap[0]] + [snap[1], snap[2]]
            assert strip(after) == strip(before)
            assert pending_records(record_path) == []
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            if record_path is not None:
                cleanup(record_path)


def addresses6(sb, dev):
    return [a["local"] for link in sb.ip("addr", "show", "dev", dev, json=True)
            for a in link.get("addr_info", []) if a["family"] == "inet6"]
