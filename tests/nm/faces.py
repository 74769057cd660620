"""The three faces of the library (CLI, Python, C) behind one interface, so that the
apply scenarios of tests/fixtures/apply are written once and run through each.

Each face runs one short-lived process inside the sandbox's network namespace (the
library acts on the namespace of its caller) and reports a Result.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import sys

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

    def __str__(self) -> str:
        return f"code {self.code} ({self.kind}): {self.msg} checkpoint={self.checkpoint}"


def _flags(no_commit: bool, timeout: int | None, memory_only: bool, no_verify: bool) -> list[str]:
    args = []
    if no_commit:
        args.append("--no-commit")
    if timeout is not None:
        args += ["--timeout", str(timeout)]
    if memory_only:
        args.append("--memory-only")
    if no_verify:
        args.append("--no-verify")
    return args


class Face:
    name = ""

    def argv(self, cmd: str) -> list[str]:
        raise NotImplementedError

    def parse(self, proc) -> Result:
        raise NotImplementedError

    def apply(self, sb, state: str, *, no_commit=False, timeout=None, memory_only=False,
              no_verify=False) -> Result:
        argv = self.argv("apply") + _flags(no_commit, timeout, memory_only, no_verify)
        return self.parse(sb.run(argv, input=state, check=False, timeout=300))

    def commit(self, sb, checkpoint: str | None = None) -> Result:
        return self._finish(sb, "commit", checkpoint)

    def rollback(self, sb, checkpoint: str | None = None) -> Result:
        return self._finish(sb, "rollback", checkpoint)

    def _finish(self, sb, cmd: str, checkpoint: str | None) -> Result:
        argv = self.argv(cmd) + ([checkpoint] if checkpoint else [])
        return self.parse(sb.run(argv, check=False, timeout=300))


class CliFace(Face):
    """`mptcpstatectl apply -`: exit status = code, checkpoint on stdout, error on stderr."""
    name = "cli"

    def __init__(self, binary: str):
        self.binary = binary

    def argv(self, cmd: str) -> list[str]:
        return [self.binary, cmd] + (["-"] if cmd == "apply" else [])

    def parse(self, proc) -> Result:
        code = proc.returncode
        lines = proc.stderr.strip().splitlines()
        err = [ln for ln in lines if ln.startswith("error")]
        return Result(
            code=code,
            kind=KINDS.get(code),
            msg=(err[-1] if err else proc.stderr.strip()) if code else "",
            checkpoint=proc.stdout.strip() or None,
        )


class JsonFace(Face):
    """A helper program that prints {"code", "kind", "msg", "checkpoint"} as JSON."""

    def __init__(self, name: str, prefix: list[str]):
        self.name = name
        self.prefix = prefix

    def argv(self, cmd: str) -> list[str]:
        return self.prefix + [cmd]

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
        return Result(out["code"], out["kind"], out["msg"] or "", out["checkpoint"])


def python_face() -> Face:
    return JsonFace("python", [sys.executable, str(ROOT / "tests" / "nm" / "face_py.py")])


def c_face() -> Face | None:
    """tests/c's apply_face program (built into build/c by `make -C tests/c`), under
    valgrind when MPTCPSTATE_FACE_VALGRIND is set."""
    path = ROOT / "build" / "c" / "apply_face"
    if not os.access(path, os.X_OK):
        return None
    prefix = [str(path)]
    if os.environ.get("MPTCPSTATE_FACE_VALGRIND") and shutil.which("valgrind"):
        prefix = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
                  "--error-exitcode=99"] + prefix
    return JsonFace("c", prefix)
