"""mptcpstatectl apply/commit/rollback: arguments refused before the library touches the
system (no NetworkManager needed). The applies that reach NetworkManager are tested in
tests/nm.

Each command runs in a sandbox network namespace (tests/harness, no NetworkManager, no
system bus reachable), never in the machine's own: a check reordered after a write would
write there. The sandbox is read back at the end: nothing was written."""
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))
from nmsandbox import Sandbox  # noqa: E402

BAD_STATE = b"interfaces:\n- name: eth1\n  mptcp:\n    adress-flags: []\n"


def _state(sb) -> dict:
    return {"addresses": sb.ip("addr", "show", json=True),
            "endpoints": sb.ip("mptcp", "endpoint", "show"), "limits": sb.mptcp_limits(),
            "sysctls": sb.run(["sysctl", "net.mptcp"]).stdout}


@pytest.fixture(scope="module")
def sandbox():
    if os.geteuid() != 0:
        pytest.skip("needs root to run the CLI in a sandbox network namespace")
    with Sandbox(["eth1"], nm=False) as sb:
        sb.ip("addr", "add", "192.0.2.2/24", "dev", "eth1")
        before = _state(sb)
        yield sb
        assert _state(sb) == before, "a refused command wrote to the namespace"


@pytest.fixture(autouse=True)
def _in_sandbox(sandbox):
    global SANDBOX
    SANDBOX = sandbox
    yield
    SANDBOX = None


SANDBOX = None


def run(cli, *args, stdin=None):
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={SANDBOX.dir}/no-such-bus")
    return subprocess.run(["ip", "netns", "exec", SANDBOX.netns, cli, *args], input=stdin,
                          capture_output=True, timeout=60, env=env)


def one_error_line(out, *needles):
    """Exit 1 (InvalidArgument), nothing on stdout, one line on stderr holding each of
    `needles`, and no progress drawn (stderr is not a terminal)."""
    assert out.returncode == 1, out
    assert out.stdout == b""
    lines = out.stderr.decode().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("mptcpstatectl: InvalidArgument: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert b"\r" not in out.stderr and b"\x1b" not in out.stderr


def test_invalid_state_from_stdin(cli):
    one_error_line(run(cli, "apply", "-", stdin=BAD_STATE), "interfaces[0].mptcp",
                   "adress-flags")


def test_invalid_state_from_a_file(cli, tmp_path):
    f = tmp_path / "bad.yml"
    f.write_bytes(BAD_STATE)
    one_error_line(run(cli, "apply", "--no-commit", str(f)), "adress-flags")


def test_non_utf8_and_empty_input(cli):
    one_error_line(run(cli, "apply", "-", stdin=b"interfaces:\n- name: eth\xff\n"), "UTF-8")
    one_error_line(run(cli, "apply", "-", stdin=b""), "empty")


def test_no_commit_with_timeout_0(cli, seed_yaml):
    one_error_line(run(cli, "apply", "--no-commit", "--timeout", "0", "-",
                       stdin=seed_yaml.encode()), "rollback")
    one_error_line(run(cli, "apply", "-", "--timeout=0", "--memory-only", "--no-commit",
                       "--no-verify", stdin=seed_yaml.encode()), "rollback")


def test_missing_file(cli, tmp_path):
    missing = tmp_path / "missing.yml"
    one_error_line(run(cli, "apply", str(missing)), "cannot read", str(missing))


def test_every_file_is_read_before_anything_is_applied(cli, tmp_path, seed_yaml):
    """The seed would need NetworkManager; the missing second file stops the command
    first."""
    seed = tmp_path / "seed.yml"
    seed.write_text(seed_yaml)
    missing = tmp_path / "missing.yml"
    one_error_line(run(cli, "apply", str(seed), str(missing)), str(missing))


def test_several_files_stop_at_the_first_error_and_name_it(cli, tmp_path):
    first, second = tmp_path / "first.yml", tmp_path / "second.yml"
    first.write_bytes(BAD_STATE)
    second.write_bytes(b"interfaces: [{name: eth2, bogus: 1}]\n")
    out = run(cli, "apply", str(first), str(second))
    one_error_line(out, f"{first}: ", "adress-flags")
    assert b"second" not in out.stderr and b"bogus" not in out.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["apply"],
        ["apply", "--no-commit"],
        ["apply", "--timeout", "-1", "-"],
        ["apply", "--timeout", "4294967296", "-"],
        ["apply", "--timeout", "soon", "-"],
        ["apply", "--verify-timeout", "-1", "-"],
        ["apply", "--verify-timeout", "nan", "-"],
        ["apply", "--verify-timeout", "x", "-"],
        ["apply", "--no-such-option", "-"],
        ["commit", "a", "b"],
        ["rollback", "a", "b"],
        ["commit", "--no-commit"],
    ],
)
def test_usage_errors_are_invalid_argument(cli, args):
    out = run(cli, *args, stdin=b"")
    assert out.returncode == 1, out
    assert out.stdout == b""
    assert out.stderr


def test_help(cli):
    out = run(cli, "apply", "--help")
    assert out.returncode == 0
    text = out.stdout.decode()
    for option in ("--no-verify", "--no-commit", "--timeout <SEC>", "--memory-only", "--kernel",
                   "--verify-timeout <SEC>", "[default: 60]"):
        assert option in text, option
    for cmd in ("commit", "rollback"):
        out = run(cli, cmd, "--help")
        assert out.returncode == 0 and b"[CHECKPOINT]" in out.stdout
