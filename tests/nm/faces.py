"""The three faces of the library (CLI, Python, C) behind one interface, so that the
apply scenarios of tests/fixtures/apply are written once and run through each.

Each face runs one short-lived process inside the sandbox's network namespace (the
library acts on the namespace of its caller) and reports a Result, with the log of the
call (every record: the CLI runs with -v, the Python face logs at DEBUG, the C face
prints the log array it got).

`kernel=True` makes a face apply in kernel-only mode: CLI `apply --kernel`, Python
`apply(kernel_only=True)`, C `MPTCPSTATE_FLAG_KERNEL_ONLY`. commit and rollback take no
mode: a checkpoint says which backend it belongs to.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
KINDS = {
    1: "InvalidArgument", 2: "NotSupported", 3: "PermissionDenied", 4: "NetworkManager",
    5: "Kernel", 6: "Verification", 7: "Timeout", 8: "Busy", 9: "Bug",
}


@dataclasses.dataclass
class Result:
    code: int
    kind: str | None
    msg: str
    checkpoint: str | None
    log: str = ""
    # The plan (apply with dry_run or plan=True): {"interfaces": [...], "host": [...]}.
    plan: dict | None = None

    def __str__(self) -> str:
        return (f"code {self.code} ({self.kind}): {self.msg} checkpoint={self.checkpoint}\n"
                f"log:\n{self.log}")


def _flags(no_commit: bool, timeout: int | None, memory_only: bool, no_verify: bool,
           kernel: bool = False, verify_timeout: float | None = None) -> list[str]:
    args = ["--kernel"] if kernel else []
    if no_commit:
        args.append("--no-commit")
    if timeout is not None:
        args += ["--timeout", str(timeout)]
    if memory_only:
        args.append("--memory-only")
    if no_verify:
        args.append("--no-verify")
    if verify_timeout is not None:
        args += ["--verify-timeout", str(verify_timeout)]
    return args


def _log_lines(records) -> str:
    """The log records of a JSON face ({"level", "target", "message"} objects, or lines)."""
    if not records:
        return ""
    return "\n".join(r if isinstance(r, str) else
                     f"{r.get('level', '?').upper()} {r.get('target', '')}: {r.get('message', '')}"
                     for r in records)


class Face:
    name = ""
    kernel = False
    # Whether apply takes a verification timeout (the C ABI has none).
    has_verify_timeout = True

    def argv(self, cmd: str) -> list[str]:
        raise NotImplementedError

    def parse(self, proc) -> Result:
        raise NotImplementedError

    def apply(self, sb, state: str, *, no_commit=False, timeout=None, memory_only=False,
              no_verify=False, verify_timeout=None, dry_run=False, plan=False) -> Result:
        """`dry_run`: write nothing, the result's plan says what would be done; `plan`:
        a real apply that returns its plan too."""
        if verify_timeout is not None and not self.has_verify_timeout:
            raise ValueError(f"the {self.name} face has no verification timeout")
        argv = self.argv("apply") + _flags(no_commit, timeout, memory_only, no_verify,
                                           self.kernel, verify_timeout)
        if dry_run:
            argv.append("--dry-run")
        if plan:
            argv.append("--plan")
        return self.parse(self.run(sb, argv, input=state))

    def commit(self, sb, checkpoint: str | None = None) -> Result:
        return self._finish(sb, "commit", checkpoint)

    def rollback(self, sb, checkpoint: str | None = None) -> Result:
        return self._finish(sb, "rollback", checkpoint)

    def _finish(self, sb, cmd: str, checkpoint: str | None) -> Result:
        argv = self.argv(cmd) + ([checkpoint] if checkpoint else [])
        return self.parse(self.run(sb, argv))

    def run(self, sb, argv: list[str], input: str | None = None):
        return sb.run(argv, input=input, check=False, timeout=300)


class CliFace(Face):
    """`mptcpstatectl -v apply -`: exit status = code, checkpoint on stdout, the log and
    the error (`mptcpstatectl: KIND: message`, one line) on stderr."""
    name = "cli"

    def __init__(self, binary: str, kernel: bool = False):
        self.binary = binary
        self.kernel = kernel

    def argv(self, cmd: str) -> list[str]:
        return [self.binary, "-v", cmd] + (["-"] if cmd == "apply" else [])

    def run(self, sb, argv: list[str], input: str | None = None):
        # The CLI spells "the plan too" --json: `--dry-run --json` prints the plan,
        # `--json` alone {"checkpoint", "plan"}.
        if "--plan" in argv:
            argv = [a for a in argv if a != "--plan"] + ["--json"]
        elif "--dry-run" in argv:
            argv = argv + ["--json"]
        return super().run(sb, argv, input)

    def parse(self, proc) -> Result:
        code = proc.returncode
        # Only 0 and the error codes 1..9 are answers: a panic (101), death by a signal
        # (negative) or any other status is a crash of the face, never "no error kind".
        assert code in KINDS or code == 0, (
            f"the CLI crashed or was killed (exit {code}):\n{proc.stdout}\n{proc.stderr[-4000:]}")
        assert "panicked at" not in proc.stderr, f"the CLI panicked:\n{proc.stderr[-4000:]}"
        lines = proc.stderr.strip().splitlines()
        err = [ln for ln in lines if ln.startswith("mptcpstatectl: ")]
        out = proc.stdout.strip()
        checkpoint, plan = out or None, None
        if out.startswith("{"):
            got = json.loads(out)
            if "plan" in got:
                checkpoint, plan = got["checkpoint"], got["plan"]
            else:
                checkpoint, plan = None, got
        return Result(
            code=code,
            kind=KINDS.get(code),
            msg=(err[-1] if err else proc.stderr.strip()) if code else "",
            checkpoint=checkpoint,
            log=proc.stderr,
            plan=plan,
        )


# The kinds of C-face call that have run under valgrind (JsonFace._under_valgrind).
_VALGRIND_SEEN: set = set()


class JsonFace(Face):
    """A helper program that prints {"code", "kind", "msg", "checkpoint"} as JSON."""

    def __init__(self, name: str, prefix: list[str], kernel: bool = False,
                 has_verify_timeout: bool = True, valgrind: list[str] | None = None):
        self.name = name
        self.prefix = prefix
        self.kernel = kernel
        self.has_verify_timeout = has_verify_timeout
        self.valgrind = valgrind
        self.valgrind_all = os.environ.get("MPTCPSTATE_FACE_VALGRIND") == "all"

    def argv(self, cmd: str) -> list[str]:
        return self.prefix + [cmd]

    def _under_valgrind(self, argv: list[str]) -> bool:
        """Every call with MPTCPSTATE_FACE_VALGRIND=all; else the first of each kind (the
        verb and its flags, without the checkpoint path) in this pytest process: the C
        boundary code a call goes through is the same whatever the state, and the C
        tests (tests/c) run every entry point and error path under valgrind."""
        if self.valgrind_all:
            return True
        key = (self.kernel, tuple(a for a in argv[len(self.prefix):] if not a.startswith("/")))
        if key in _VALGRIND_SEEN:
            return False
        _VALGRIND_SEEN.add(key)
        return True

    def run(self, sb, argv: list[str], input: str | None = None):
        if not self.valgrind or not self._under_valgrind(argv):
            return super().run(sb, argv, input)
        # valgrind writes to a file of its own: the rollback timer a no-commit apply forks
        # lives on under valgrind with valgrind's descriptors, and would hold a pipe to
        # this process open until its deadline.
        tmp = tempfile.mkdtemp(prefix="mptcpstate-face-valgrind-")
        try:
            proc = super().run(sb, self.valgrind + [f"--log-file={tmp}/%p.log"] + argv, input)
            proc.stderr += "".join(f.read_text(errors="replace")
                                   for f in sorted(pathlib.Path(tmp).iterdir()))
            return proc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def parse(self, proc) -> Result:
        # The programs exit 0 whatever the library returned: anything else is a crash,
        # a usage error, or (99) what valgrind found.
        assert proc.returncode == 0, (
            f"{self.name} face exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr[-4000:]}")
        try:
            out = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise AssertionError(
                f"{self.name} face printed no result (exit {proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}") from None
        if "rollback" in out:
            # The Python face: the exception's `rollback` says what its message says.
            msg = out["msg"] or ""
            said = ("rollback-failed" if "; the rollback failed too: " in msg
                    else "rolled-back" if msg.endswith("; rolled back") else None)
            assert out["rollback"] == said, f"rollback={out['rollback']!r} for: {msg}"
        return Result(out["code"], out["kind"], out["msg"] or "", out["checkpoint"],
                      _log_lines(out.get("log")), out.get("plan"))


def python_face(kernel: bool = False) -> Face:
    return JsonFace("python", [sys.executable, str(ROOT / "tests" / "nm" / "face_py.py")],
                    kernel)


def c_face(kernel: bool = False) -> Face | None:
    """tests/c's apply_face program (built into build/c by `make -C tests/c`), under
    valgrind when MPTCPSTATE_FACE_VALGRIND is set (`all`: every call; else the first of
    each kind of call, see JsonFace._under_valgrind). A no-commit apply forks the rollback
    timer, which lives on under valgrind: `--child-silent-after-fork` keeps valgrind's
    report of it (and of the short-lived process between, which sees as lost what the
    threads it does not have held) out of the result."""
    path = ROOT / "build" / "c" / "apply_face"
    if not os.access(path, os.X_OK):
        return None
    valgrind = None
    if os.environ.get("MPTCPSTATE_FACE_VALGRIND") and not shutil.which("valgrind"):
        # Asked for: never dropped silently.
        raise AssertionError("MPTCPSTATE_FACE_VALGRIND is set but valgrind is not installed")
    if os.environ.get("MPTCPSTATE_FACE_VALGRIND"):
        valgrind = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
                    "--error-exitcode=99", "--child-silent-after-fork=yes"]
    return JsonFace("c", [str(path)], kernel, has_verify_timeout=False, valgrind=valgrind)


def is_empty_plan(plan: dict | None) -> bool:
    """A plan that changes nothing (a dry run's or an apply's)."""
    return plan is not None and not plan["interfaces"] and not plan["host"]


def check_dry_run_result(dry: Result, kind: str | None, planned_errors: set[str],
                         where: str) -> None:
    """A dry run of a step the apply passes gives a plan; of a step that fails with one of
    `planned_errors` (found before anything is written), the same error."""
    if kind is None:
        assert dry.kind is None and dry.plan is not None, f"{where}: dry run: {dry}"
    elif kind in planned_errors:
        assert dry.kind == kind, f"{where}: dry run: {dry}"
