#!/usr/bin/env bash
# Installs what building and testing mptcpstate needs on a fresh Debian machine (root).
# Idempotent: packages already there are not fetched again.
set -euo pipefail

apt_pkgs=(network-manager dbus iproute2 valgrind pkg-config gcc make util-linux binutils dnsmasq-base mptcpd mptcpd-plugins strace)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # network-manager pulls systemd and udev; no service starts where PID 1 is not systemd,
  # and the tests run their own NetworkManager in private namespaces only.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py_missing=()
python3 -c 'import pytest' 2>/dev/null || py_missing+=(pytest)
# mypy: tests/python checks the .pyi stubs against the module with mypy's stubtest.
python3 -c 'import mypy.stubtest' 2>/dev/null || py_missing+=(mypy)
command -v maturin >/dev/null 2>&1 || python3 -c 'import maturin' 2>/dev/null || py_missing+=("maturin>=1.8,<2")
# ansible-core: tests/nm/test_ansible.py runs the collection's module with ansible-playbook.
{ python3 -c 'import ansible.release' 2>/dev/null && command -v ansible-playbook >/dev/null 2>&1; } ||
  py_missing+=("ansible-core>=2.16,<2.20")
if ((${#py_missing[@]})); then
  echo "setup: pip installing ${py_missing[*]}"
  python3 -m pip install -q "${py_missing[@]}"
fi

command -v cargo >/dev/null || { echo "setup: cargo is required (rustup)"; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null 2>&1 || true

# cargo-fuzz for the short fuzz run of scripts/test.sh (scripts/fuzz.sh); not wanted with
# MPTCPSTATE_FUZZ_SECONDS=0. A failed install is not fatal: scripts/fuzz.sh then says why
# it skips.
if [[ ${MPTCPSTATE_FUZZ_SECONDS:-} != 0 ]] && ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "setup: cargo install cargo-fuzz --locked (a few minutes, once)"
  cargo install -q cargo-fuzz --locked || echo "setup: cargo-fuzz could not be installed; the fuzz run will be skipped"
fi
echo "setup: ok"
