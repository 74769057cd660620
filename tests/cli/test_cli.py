"""mptcpstatectl: format, gc, version, exit codes, and the shared bad-input table."""
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]



def _load_table():
    spec = importlib.util.spec_from_file_location(
        "materialize", ROOT / "tests" / "fixtures" / "bad" / "materialize.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.load_cases()


CASES = _load_table()


def run(cli, *args, stdin=None):
    return subprocess.run([cli, *args], input=stdin, capture_output=True)


def test_format_seed_canonical_yaml_and_json(cli, seed_yaml):
    out = run(cli, "format", "-", stdin=seed_yaml.encode())
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert text.startswith("---\n")
    assert "address-flags:\n    - signal\n    - subflow\n" in text
    # The canonical output is itself valid input and a fixed point.
    again = run(cli, "format", "-", stdin=out.stdout)
    assert again.stdout == out.stdout
    js = run(cli, "format", "--json", "-", stdin=seed_yaml.encode())
    doc = json.loads(js.stdout)
    assert doc["interfaces"][0]["mptcp"]["address-flags"] == ["signal", "subflow"]


def test_gc_seed_gives_mptcp_flags_56(cli, tmp_path, seed_yaml):
    seed = tmp_path / "seed.yml"
    seed.write_text(seed_yaml)
    out = run(cli, "gc", "--json", str(seed))
    assert out.returncode == 0, out.stderr
    (name, keyfile), = json.loads(out.stdout)["NetworkManager"]
    assert name == "eth1.nmconnection"
    assert "mptcp-flags=56\n" in keyfile
    assert "address1=192.0.2.2/24\n" in keyfile
    # Deterministic to the byte.
    assert run(cli, "gc", "--json", str(seed)).stdout == out.stdout
    d = tmp_path / "out"
    written = run(cli, "gc", "--write-dir", str(d), str(seed))
    assert written.returncode == 0, written.stderr
    f = d / "eth1.nmconnection"
    assert f.read_text() == keyfile
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    # Over a keyfile others can read, and over a symlink: a new 0600 file either way,
    # and the symlink's target untouched.
    f.chmod(0o644)
    assert run(cli, "gc", "--write-dir", str(d), str(seed)).returncode == 0
    assert oct(f.stat().st_mode & 0o777) == "0o600" and f.read_text() == keyfile
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    f.unlink()
    f.symlink_to(victim)
    assert run(cli, "gc", "--write-dir", str(d), str(seed)).returncode == 0
    assert not f.is_symlink() and f.read_text() == keyfile
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    assert victim.read_text() == "untouched\n"
    assert sorted(p.name for p in d.iterdir()) == ["eth1.nmconnection"]


def test_warnings_always_shown_and_verbose_log(cli):
    state = b"interfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow]}\n  ipv6:\n    address: [{ip: fe80::1, prefix-length: 64}]\n"
    out = run(cli, "format", "-", stdin=state)
    assert out.returncode == 0
    assert b"WARN" in out.stderr and b"fe80::1 is link-local" in out.stderr


def test_gc_laminar_warns_and_port_is_not_supported(cli):
    laminar = b"interfaces:\n- name: eth1\n  mptcp: {address-flags: [laminar, subflow]}\n"
    out = run(cli, "gc", "-", stdin=laminar)
    assert out.returncode == 0, out.stderr
    assert b"mptcp-flags=296" in out.stdout
    assert b"NetworkManager 1.56 or newer" in out.stderr
    port = b"interfaces:\n- name: eth1\n  ipv4:\n    address:\n    - {ip: 192.0.2.2, prefix-length: 24, mptcp-flags: [signal], mptcp-port: 8080}\n"
    assert run(cli, "format", "-", stdin=port).returncode == 0
    out = run(cli, "gc", "-", stdin=port)
    assert out.returncode == CODES["NotSupported"], out.stderr
    line = out.stderr.decode().strip().splitlines()[-1]
    assert line.startswith("mptcpstatectl: NotSupported: interfaces[0].ipv4.address[0].mptcp-port: ")
    assert "kernel-only mode" in line


def test_version(cli):
    out = run(cli, "version")
    assert out.returncode == 0
    cargo = (ROOT / "Cargo.toml").read_text()
    assert f'version = "{out.stdout.decode().strip()}"' in cargo


def test_usage_errors_are_invalid_argument(cli):
    assert run(cli, "no-such-command").returncode == 1
    assert run(cli, "format").returncode == 1
    assert run(cli, "--help").returncode == 0


def test_unreadable_file_is_one_line(cli, tmp_path):
    out = run(cli, "format", str(tmp_path / "missing.yml"))
    assert out.returncode == 1
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mptcpstatectl: InvalidArgument: cannot read")


def as_nobody(cli, *args, stdin=None):
    """Runs the CLI as the unprivileged user nobody (uid/gid 65534, no groups)."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the command as nobody")
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", cli, *args],
        input=stdin, capture_output=True, timeout=30)


def test_gc_write_dir_the_caller_may_not_write_is_permission_denied(cli, seed_yaml):
    """A root-owned 0755 directory, written by another user: PermissionDenied (3), not
    InvalidArgument, and nothing is written."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="mptcpstate-gc-"))
    try:
        d.chmod(0o755)
        for target in (d, d / "new"):
            out = as_nobody(cli, "gc", "--write-dir", str(target), "-", stdin=seed_yaml.encode())
            err = out.stderr.decode().strip().splitlines()
            assert out.returncode == 3, err
            assert err[-1].startswith("mptcpstatectl: PermissionDenied: cannot write "), err
            assert "Permission denied" in err[-1], err
        assert list(d.iterdir()) == []
        # The same as root writes the keyfile (mode 0600).
        assert run(cli, "gc", "--write-dir", str(d), "-", stdin=seed_yaml.encode()).returncode == 0
        assert (d / "eth1.nmconnection").stat().st_mode & 0o777 == 0o600
        # Overwriting a keyfile of root's, too, is denied.
        out = as_nobody(cli, "gc", "--write-dir", str(d), "-", stdin=seed_yaml.encode())
        assert out.returncode == 3, out.stderr
    finally:
        shutil.rmtree(d)


def test_input_the_caller_may_not_read_is_permission_denied(cli, tmp_path, seed_yaml):
    d = pathlib.Path(tempfile.mkdtemp(prefix="mptcpstate-in-"))
    try:
        d.chmod(0o755)
        f = d / "seed.yml"
        f.write_text(seed_yaml)
        f.chmod(0o600)
        out = as_nobody(cli, "format", str(f))
        err = out.stderr.decode().strip().splitlines()
        assert out.returncode == 3, err
        assert err[-1].startswith(f"mptcpstatectl: PermissionDenied: cannot read {f}"), err
    finally:
        shutil.rmtree(d)


CODES = {
    "InvalidArgument": 1, "NotSupported": 2, "PermissionDenied": 3, "NetworkManager": 4,
    "Kernel": 5, "Verification": 6, "Timeout": 7, "Busy": 8, "Bug": 9,
}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
@pytest.mark.parametrize("command", ["format", "gc"])
def test_bad_input(cli, tmp_path, case, command):
    path = tmp_path / "input"
    path.write_bytes(case["data"])
    start = time.monotonic()
    proc = subprocess.Popen([cli, command, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - start
    assert proc.returncode == CODES[case["kind"]], err
    msg = err.decode()
    lines = msg.strip().splitlines()
    assert lines[-1].startswith(f"mptcpstatectl: {case['kind']}: "), msg
    for want in case["message"]:
        assert want in lines[-1], f"{want!r} not in {lines[-1]!r}"
    assert took < 1.0, f"took {took:.2f} s"


# Runs argv[1:] and prints its exit code and peak RSS (KiB) as the last line of stdout.
_PEAK_RSS = (
    "import os, sys\n"
    "pid = os.spawnv(os.P_NOWAIT, sys.argv[1], sys.argv[1:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input_memory(cli, tmp_path, case):
    """No input makes the tool use more than 100 MB."""
    path = tmp_path / "input"
    path.write_bytes(case["data"])
    # Measured from a fresh interpreter: a child forked straight from this pytest process
    # (well over 100 MB once tests/python ran in it) has the parent's pages counted in its
    # ru_maxrss, exec or not.
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, cli, "gc", str(path)], capture_output=True, check=True
    )
    code, maxrss = map(int, out.stdout.decode().splitlines()[-1].split())
    assert code == CODES[case["kind"]]
    assert maxrss < 100 * 1024, f"peak RSS {maxrss} KiB"
