#!/usr/bin/env python3
"""The Python face of the apply scenarios: one call of the `mptcpstate` package.

Usage: face_py.py apply [--kernel] [--no-commit] [--timeout SEC] [--memory-only]
                        [--no-verify] [--verify-timeout SEC] [--dry-run | --plan]
                        (state on stdin)
       face_py.py commit|rollback [CHECKPOINT]

Prints one JSON object: {"code", "kind", "msg", "checkpoint", "log", "plan"}, and on an
error "rollback" (the exception's attribute). plan: with --dry-run, `apply(dry_run=True)`'s
result; with --plan, `apply(with_plan=True)`'s. log: the call's records from the
`mptcpstate` logger, at every level. Run inside the sandbox's network
namespace (the library acts on the namespace of its caller).
"""
import argparse
import json
import logging
import sys

import mptcpstate


class Keep(logging.Handler):
    def __init__(self):
        super().__init__(level=1)
        self.records = []

    def emit(self, record):
        self.records.append({"level": record.levelname, "target": getattr(record, "target", ""),
                             "message": record.getMessage()})


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["apply", "commit", "rollback"])
    p.add_argument("checkpoint", nargs="?")
    p.add_argument("--kernel", action="store_true")
    p.add_argument("--no-commit", action="store_true")
    p.add_argument("--no-verify", action="store_true")
    p.add_argument("--memory-only", action="store_true")
    p.add_argument("--timeout", type=int, default=60)
    p.add_argument("--verify-timeout", type=float, default=5.0)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--plan", action="store_true")
    a = p.parse_args()
    keep = Keep()
    logger = logging.getLogger("mptcpstate")
    logger.setLevel(1)
    logger.addHandler(keep)
    logger.propagate = False
    out = {"code": 0, "kind": None, "msg": "", "checkpoint": None, "plan": None}
    try:
        if a.cmd == "apply":
            got = mptcpstate.apply(
                sys.stdin.read(),
                kernel_only=a.kernel,
                commit=not a.no_commit,
                rollback_timeout=a.timeout,
                save_to_disk=not a.memory_only,
                verify_change=not a.no_verify,
                verify_timeout=a.verify_timeout,
                dry_run=a.dry_run,
                with_plan=a.plan,
            )
            if a.dry_run:
                out["plan"] = got
            elif a.plan:
                out["checkpoint"], out["plan"] = got["checkpoint"], got["plan"]
            else:
                out["checkpoint"] = got
        elif a.cmd == "commit":
            mptcpstate.commit(a.checkpoint)
        else:
            mptcpstate.rollback(a.checkpoint)
    except mptcpstate.MptcpStateError as e:
        out.update(code=e.code, kind=e.kind, msg=str(e), rollback=e.rollback)
    out["log"] = keep.records
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
