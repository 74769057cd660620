#!/usr/bin/env python3
"""The Python face of the apply scenarios: one call of the `mptcpstate` package.

Usage: face_py.py apply [--no-commit] [--timeout SEC] [--memory-only] [--no-verify]
                        (state on stdin)
       face_py.py commit|rollback [CHECKPOINT]

Prints one JSON object: {"code", "kind", "msg", "checkpoint"}. Run inside the sandbox's
network namespace (the library acts on the namespace of its caller).
"""
import argparse
import json
import sys

import mptcpstate


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["apply", "commit", "rollback"])
    p.add_argument("checkpoint", nargs="?")
    p.add_argument("--no-commit", action="store_true")
    p.add_argument("--no-verify", action="store_true")
    p.add_argument("--memory-only", action="store_true")
    p.add_argument("--timeout", type=int, default=60)
    a = p.parse_args()
    out = {"code": 0, "kind": None, "msg": "", "checkpoint": None}
    try:
        if a.cmd == "apply":
            out["checkpoint"] = mptcpstate.apply(
                sys.stdin.read(),
                commit=not a.no_commit,
                rollback_timeout=a.timeout,
                save_to_disk=not a.memory_only,
                verify_change=not a.no_verify,
            )
        elif a.cmd == "commit":
            mptcpstate.commit(a.checkpoint)
        else:
            mptcpstate.rollback(a.checkpoint)
    except mptcpstate.MptcpStateError as e:
        out.update(code=e.code, kind=e.kind, msg=str(e))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
