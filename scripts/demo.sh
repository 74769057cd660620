#!/usr/bin/env bash
# The main job, on a fresh machine (root): install what is needed, start a private
# NetworkManager in its own network namespaces (never the machine's own network), apply
# the seed example (nmstate's MPTCP page) through mptcpstate, and print `show` for eth1
# beside the kernel's `ip mptcp endpoint show`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release -q -p mptcpstatectl
CTL=target/release/mptcpstatectl
H="python3 tests/harness/nmsandbox.py"
STATE=${1:-tests/fixtures/seed.yml}

NAME=$($H start --veth eth1 --owner-pid $$)
trap '$H stop "$NAME" >/dev/null' EXIT
in_sandbox() { $H exec "$NAME" -- "$@"; }

echo "== desired state: $STATE"
cat "$STATE"
echo
echo "== mptcpstatectl apply $STATE   (private NetworkManager, sandbox namespace)"
in_sandbox "$CTL" -v apply "$STATE"
echo
show=$(in_sandbox "$CTL" show eth1)
eps=$(in_sandbox ip mptcp endpoint show)
printf '%-40s %s\n' "== mptcpstatectl show eth1" "== kernel: ip mptcp endpoint show"
paste <(echo "$show") <(echo "$eps") | expand -t 41
echo
echo "== kernel: ip mptcp limits show"
in_sandbox ip mptcp limits show
echo "== NetworkManager: connection.mptcp-flags of eth1"
in_sandbox nmcli -g connection.mptcp-flags connection show eth1
