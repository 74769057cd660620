#!/usr/bin/env bash
# Runs every cargo-fuzz target of rust/fuzz/ for a short while and fails on a finding.
#
#   scripts/fuzz.sh [TARGET...]          # default: all targets
#
# MPTCPSTATE_FUZZ_SECONDS   total budget in seconds, split evenly over the targets
#                           (default 25: the test suite's short run; the long runs of
#                           SECURITY.md used 300 per target)
# MPTCPSTATE_FUZZ_SANITIZER address (default) or none
# MPTCPSTATE_FUZZ_BUILD     release (default) or dev. dev builds in about half the CPU
#                           time (3 against 5.6 min on the 2-core VM, cold) and keeps
#                           overflow checks and debug assertions, but runs 10-20x fewer
#                           inputs a second (state: 215 against 3822 exec/s)
# MPTCPSTATE_REQUIRE_FUZZ   1: a skip fails instead
#
# cargo-fuzz needs nightly rustc flags (-Zsanitizer, sancov passes); on a stable
# toolchain RUSTC_BOOTSTRAP=1 lets rustc accept them. Where cargo-fuzz is missing or this
# toolchain cannot build an instrumented binary, the run is skipped with a line saying
# why ("fuzz: SKIPPED: ..."), exit status 0. A build failure of the targets themselves
# fails. Each target starts from its seeds (rust/fuzz/seeds/<target>/), its past findings
# (rust/fuzz/regressions/<target>/) and what earlier runs kept (rust/fuzz/corpus/, not
# committed). A crash, leak, timeout or out-of-memory leaves the input in
# rust/fuzz/artifacts/<target>/ and fails the run: fix the bug, then keep the input under
# rust/fuzz/regressions/<target>/ (cargo test replays it on stable).
set -euo pipefail
cd "$(dirname "$0")/../rust"

all=(state capi_offline netlink_route netlink_genl netlink_diag)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
total=${MPTCPSTATE_FUZZ_SECONDS:-25}
per=$((total / ${#targets[@]}))
((per >= 1)) || per=1
sanitizer=${MPTCPSTATE_FUZZ_SANITIZER:-address}
case ${MPTCPSTATE_FUZZ_BUILD:-release} in
  dev) profile=(--dev) dir=debug ;;
  release) profile=(-O) dir=release ;;
  *) echo "fuzz: FAILED: MPTCPSTATE_FUZZ_BUILD must be dev or release" >&2; exit 1 ;;
esac

# MPTCPSTATE_REQUIRE_FUZZ=1 turns a skip into a failure (exit 1).
skip() {
  echo "fuzz: SKIPPED: $*"
  if [[ ${MPTCPSTATE_REQUIRE_FUZZ:-} == 1 ]]; then
    echo "fuzz: FAILED: MPTCPSTATE_REQUIRE_FUZZ=1 and the fuzz run cannot happen"
    exit 1
  fi
  exit 0
}

command -v cargo-fuzz >/dev/null 2>&1 ||
  skip "cargo-fuzz is not installed (scripts/setup.sh installs it: cargo install cargo-fuzz --locked)"

# Nightly flags on a stable toolchain. A nightly rustc ignores the variable.
export RUSTC_BOOTSTRAP=1
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'fn main() {}' >"$probe/p.rs"
flags=(-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4)
[[ $sanitizer == none ]] || flags+=("-Zsanitizer=$sanitizer")
if ! out=$(rustc --edition 2021 "${flags[@]}" -o "$probe/p" "$probe/p.rs" 2>&1); then
  skip "this toolchain ($(rustc --version)) cannot build a fuzz target with ${flags[*]}: $(head -n 3 <<<"$out" | tr '\n' ' ')"
fi

echo "fuzz: building ${targets[*]} (sanitizer $sanitizer, ${MPTCPSTATE_FUZZ_BUILD:-release} build)"
# One cargo call for all targets (built in parallel), one per target otherwise.
if [[ "${targets[*]}" == "${all[*]}" ]]; then names=(""); else names=("${targets[@]}"); fi
for t in "${names[@]}"; do
  cargo fuzz build "${profile[@]}" --sanitizer "$sanitizer" ${t:+"$t"} 2>&1 | grep -Ev '^\s*(Compiling|Finished|Building)' || true
done
bin=fuzz/target/x86_64-unknown-linux-gnu/$dir
for t in "${targets[@]}"; do
  [[ -x $bin/$t ]] || { echo "fuzz: FAILED: $t did not build (see above)"; exit 1; }
done

failed=()
for t in "${targets[@]}"; do
  dirs=("$PWD/fuzz/corpus/$t")
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  # capi_offline takes the same documents as state.
  seeds=$t
  [[ $t == capi_offline ]] && seeds=state
  for d in "$PWD/fuzz/seeds/$seeds" "$PWD/fuzz/regressions/$t"; do
    [[ -d $d ]] && dirs+=("$d")
  done
  echo "fuzz: $t for ${per} s"
  # -timeout: one input taking longer is a finding (bounded parse time); generous so a
  # loaded CI machine does not flake.
  if ! cargo fuzz run "${profile[@]}" --sanitizer "$sanitizer" "$t" "${dirs[@]}" -- \
    -max_total_time="$per" -timeout=30 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$PWD/fuzz/artifacts/$t/" >"fuzz/artifacts/$t/last.log" 2>&1; then
    failed+=("$t")
    tail -n 40 "fuzz/artifacts/$t/last.log"
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)|^(#[0-9]+\s+DONE)' \
    "fuzz/artifacts/$t/last.log" | sed "s/^/fuzz: $t: /" || true
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (inputs in rust/fuzz/artifacts/<target>/)"
  exit 1
fi
echo "fuzz: ok (${targets[*]}, ${per} s each)"
