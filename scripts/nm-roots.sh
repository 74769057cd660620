#!/usr/bin/env bash
# Root file systems holding newer NetworkManagers than the machine's own, for the test
# harness (tests/harness/nmsandbox.py start --nm-root DIR). Debian trixie holds NM 1.52,
# Debian sid NM 1.58 (at the time of writing; the version each root holds is read from
# its binary and printed, never assumed).
#
#   scripts/nm-roots.sh [SUITE...]        # default: trixie sid
#
# Roots go to $MPTCPSTATE_NM_ROOTS (default /var/cache/mptcpstate/nm-roots), one
# directory per suite, outside the checkout. A finished root is marked with
# DIR/.mptcpstate-root-done; a root without the mark (an interrupted build) is removed
# and built again. A finished root is kept as it is (sid moves on: remove its directory
# to get the NetworkManager sid has now). The Debian mirror is the one this machine's apt uses
# (/etc/apt/sources.list*), or $MPTCPSTATE_DEBIAN_MIRROR.
#
# Prints one line per root: "nm-root: SUITE DIR NetworkManager VERSION (built in Ns, SIZE)"
# or "(cached, SIZE)".
set -euo pipefail

roots=${MPTCPSTATE_NM_ROOTS:-/var/cache/mptcpstate/nm-roots}
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(trixie sid)

if [ "$(id -u)" != 0 ]; then
  echo "nm-roots: needs root (debootstrap, chroot)" >&2
  exit 1
fi

# The mirror this machine's apt fetches Debian from: the first URI of a source that
# carries Debian's main archive (not -security, not third-party repositories).
mirror() {
  if [ -n "${MPTCPSTATE_DEBIAN_MIRROR:-}" ]; then
    echo "$MPTCPSTATE_DEBIAN_MIRROR"
    return
  fi
  local f uri
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    case "$f" in
    *.sources)
      uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f") ;;
    *)
      uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f") ;;
    esac
    for u in $uri; do
      case "$u" in
      */debian | */debian/) echo "${u%/}"; return ;;
      esac
    done
  done
  echo "nm-roots: no Debian mirror in /etc/apt/sources.list*; set MPTCPSTATE_DEBIAN_MIRROR" >&2
  return 1
}

if ! command -v debootstrap >/dev/null; then
  echo "nm-roots: installing debootstrap" >&2
  apt-get install -y -q debootstrap >/dev/null || {
    apt-get update -q >/dev/null
    apt-get install -y -q debootstrap >/dev/null
  }
fi

# An interrupted debootstrap leaves its mounts (proc, sys) in the root it was making.
unmount_below() {
  local m
  for m in $(awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m"
  done
}

remove_root() {
  unmount_below "$1"
  rm -rf --one-file-system "$1"
}

mkdir -p "$roots"
url=$(mirror)
for suite in "${suites[@]}"; do
  dir=$roots/$suite
  how=cached
  if [ ! -e "$dir/.mptcpstate-root-done" ]; then
    if [ -e "$dir" ]; then
      echo "nm-roots: $dir is unfinished, building it again" >&2
      remove_root "$dir"
    fi
    remove_root "$dir.tmp"
    echo "nm-roots: building $suite into $dir from $url" >&2
    start=$(date +%s)
    # The packages only: the root's NetworkManager is started by the harness with
    # chroot, never by an init system. dbus is included so that network-manager's
    # configuration completes (the machine's dbus-daemon provides the bus).
    debootstrap --variant=minbase --include=network-manager,dbus "$suite" "$dir.tmp" "$url" \
      >"$roots/$suite.log" 2>&1 || {
      echo "nm-roots: debootstrap $suite failed; see $roots/$suite.log" >&2
      tail -5 "$roots/$suite.log" >&2
      exit 1
    }
    rm -rf "$dir.tmp/var/cache/apt/archives/"*.deb
    mv "$dir.tmp" "$dir"
    touch "$dir/.mptcpstate-root-done"
    how="built in $(($(date +%s) - start))s"
  fi
  version=$(chroot "$dir" /usr/sbin/NetworkManager --version)
  size=$(du -sh --one-file-system "$dir" | cut -f1)
  echo "nm-root: $suite $dir NetworkManager $version ($how, $size)"
done
