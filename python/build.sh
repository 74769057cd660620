#!/usr/bin/env bash
# Builds the mptcpstate wheel with maturin and installs it with pip.
#
#   python/build.sh [OUTDIR]      (default OUTDIR: target/wheels of the workspace)
#
# PYTHON picks the interpreter (default python3). Idempotent: maturin is installed
# only when missing or too old, earlier mptcpstate wheels in OUTDIR are removed first,
# and the new wheel replaces any installed mptcpstate.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="${1:-$root/target/wheels}"
python="${PYTHON:-python3}"
pip_install=("$python" -m pip install --disable-pip-version-check --quiet)
if [ "$(id -u)" = 0 ]; then
    pip_install+=(--root-user-action=ignore)
fi

# maturin >= 1.9.4 sets PYO3_BUILD_EXTENSION_MODULE (no libpython link). pip does not
# touch the network when the installed one already satisfies this.
"${pip_install[@]}" 'maturin>=1.9.4,<2'

mkdir -p "$out"
rm -f "$out"/mptcpstate-*.whl
"$python" -m maturin build --release \
    --manifest-path "$here/Cargo.toml" \
    --interpreter "$python" \
    --out "$out"

wheels=("$out"/mptcpstate-*.whl)
if [ "${#wheels[@]}" -ne 1 ] || [ ! -f "${wheels[0]}" ]; then
    echo "build.sh: expected one wheel in $out, found: ${wheels[*]}" >&2
    exit 1
fi
"${pip_install[@]}" --force-reinstall --no-deps "${wheels[0]}"
echo "build.sh: installed ${wheels[0]}"
