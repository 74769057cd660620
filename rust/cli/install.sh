#!/bin/sh
# Builds mptcpstatectl and installs it with its systemd units.
#
#   rust/cli/install.sh [--profile PROFILE] [--no-build] PREFIX
#
#   PREFIX          where to install, e.g. /usr/local or build/prefix (made absolute)
#   --profile P     cargo profile to build: release (default), dev, or any custom one
#   --no-build      install what is already built for that profile
#
# Environment: DESTDIR (staged install: files go to $DESTDIR$PREFIX while the units still
# say $BINDIR), BINDIR (default $PREFIX/bin), SYSTEMDUNITDIR (default
# $PREFIX/lib/systemd/system), CARGO (default cargo), CARGO_TARGET_DIR.
#
# Installs:
#   $BINDIR/mptcpstatectl
#   $SYSTEMDUNITDIR/mptcpstate.service          boot-time service, NetworkManager mode
#   $SYSTEMDUNITDIR/mptcpstate-kernel.service   boot-time service, kernel-only mode
set -eu

usage() {
    sed -n '2,/^set -eu/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/scripts/install-common.sh"
bindir=${BINDIR:-$prefix/bin}
unitdir=${SYSTEMDUNITDIR:-$prefix/lib/systemd/system}

install_built mptcpstatectl mptcpstatectl

install -d "$destdir$bindir" "$destdir$unitdir"
install -m 0755 "$built" "$destdir$bindir/mptcpstatectl"
for unit in mptcpstate.service mptcpstate-kernel.service; do
    sed -e "s|@BINDIR@|$bindir|g" "$here/systemd/$unit.in" > "$destdir$unitdir/$unit"
    chmod 0644 "$destdir$unitdir/$unit"
done

echo "installed mptcpstatectl and its systemd units into $destdir$prefix"
