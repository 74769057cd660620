#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine (root). Installs what it needs first.
#
#   scripts/test.sh
#
# Rust (fmt, clippy, unit + integration tests), the C library under valgrind, the
# Python package, the CLI, and the tests against a real NetworkManager in private
# network namespaces (tests/harness), on the machine's NetworkManager and on those of the
# Debian trixie and sid roots (scripts/nm-roots.sh). pytest runs last.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's heading says how long the one before took (the suite's budget is 30 min).
last=$SECONDS
step() {
  local now=$SECONDS
  ((now == 0)) || printf '=== (%d s)\n' "$((now - last))"
  last=$now
  printf '\n=== %s\n' "$*"
}

step "setup"
bash scripts/setup.sh

# Sandboxes left by an earlier run that was killed: the harness removes those whose
# owner is gone (only its own, by name and recorded PID).
python3 tests/harness/nmsandbox.py sweep >/dev/null || true

step "NetworkManager roots: Debian trixie and sid (scripts/nm-roots.sh; built once per machine)"
# The newer NetworkManagers the NM tests also run on (below); a built root is reused.
bash scripts/nm-roots.sh trixie sid

step "rust: fmt, clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings

step "rust: tests (includes the stale-header check of include/mptcpstate.h)"
cargo test --workspace -q

step "fuzz: a short run of every target (scripts/fuzz.sh; MPTCPSTATE_FUZZ_SECONDS, default 25)"
# Prints "fuzz: SKIPPED: <why>" and goes on where cargo-fuzz or an instrumented build
# is unavailable; fails on a finding.
bash scripts/fuzz.sh

step "release builds: CLI, kernel_dump and nm_write examples"
cargo build --release -q -p mptcpstatectl
cargo build --release -q -p mptcpstate --example kernel_dump --example nm_write

step "C: install into build/prefix, tests under valgrind"
make -s -C tests/c check

step "python: build and install the wheel"
bash python/build.sh

# CI must not pass by skipping the proofs that matter: every skip is a failure
# (tests/conftest.py), but for tests marked allowed_skip_in_ci.
export MPTCPSTATE_REQUIRE_NM=1 MPTCPSTATE_REQUIRE_KERNEL=1 MPTCPSTATE_REQUIRE_ALL=1
failed=()

# The apply table, show and round-trip tests on each newer NetworkManager (the harness
# runs it chrooted in its root: NMSANDBOX_NM_ROOT). The table through the CLI alone: the
# faces are proven equal on the machine's NetworkManager below; what differs here is
# NetworkManager. A failure here is reported at the end; the main run still runs.
for suite in trixie sid; do
  step "pytest: the NetworkManager of Debian $suite"
  NMSANDBOX_NM_ROOT=$suite MPTCPSTATE_FACES=cli \
    python3 -m pytest -q -p no:cacheprovider tests/nm/test_apply.py::test_table \
    tests/nm/test_show.py tests/nm/test_roundtrip.py tests/nm/test_nm_versions.py ||
    failed+=("the NetworkManager of Debian $suite")
done

step "pytest: harness, CLI, kernel, on the wire, NetworkManager, Python"
# The C face of the apply scenarios (tests/nm/test_apply.py, tests/kernel) runs under
# valgrind once for each kind of call (verb and flags); MPTCPSTATE_FACE_VALGRIND=all: every call.
MPTCPSTATE_FACE_VALGRIND=1 \
  python3 -m pytest -q -p no:cacheprovider --durations=25 tests/harness tests/cli tests/kernel \
  tests/wire tests/nm tests/python tests/soak || failed+=("the main pytest run")
# Nothing more is printed after a green run: pytest's summary (it says its own time) is
# the closing line.
if ((${#failed[@]})); then
  printf 'test.sh: FAILED: %s\n' "${failed[@]}"
  exit 1
fi
