#!/bin/sh
# Builds libmptcpstate and installs it with its header and pkg-config file.
#
#   capi/install.sh [--profile PROFILE] [--no-build] PREFIX
#
#   PREFIX          where to install, e.g. /usr/local or build/prefix (made absolute)
#   --profile P     cargo profile to build: release (default), dev, or any custom one
#   --no-build      install what is already built for that profile
#
# Environment: DESTDIR (staged install for packagers: files go to $DESTDIR$PREFIX while
# the pkg-config file still says $PREFIX), LIBDIR (default $PREFIX/lib), INCLUDEDIR
# (default $PREFIX/include), CARGO (default cargo), CARGO_TARGET_DIR.
#
# Installs:
#   $LIBDIR/libmptcpstate.so.1.<minor>.<patch>   the library (soname libmptcpstate.so.1)
#   $LIBDIR/libmptcpstate.so.1 -> that file      what programs load
#   $LIBDIR/libmptcpstate.so   -> .so.1          what the linker uses (-lmptcpstate)
#   $INCLUDEDIR/mptcpstate.h                     the committed header
#   $LIBDIR/pkgconfig/mptcpstate.pc
#
# The soname major (1) is the generation of the C ABI (see capi/build.rs); the crate's
# minor and patch versions complete the file name.
set -eu

SONAME_MAJOR=1

usage() {
    sed -n '2,/^set -eu/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/install-common.sh"
libdir=${LIBDIR:-$prefix/lib}
includedir=${INCLUDEDIR:-$prefix/include}
# In the .pc file, the default directories stay relative to ${prefix}, so that
# `pkg-config --define-prefix` can relocate them.
pc_libdir=${LIBDIR:-'${exec_prefix}/lib'}
pc_includedir=${INCLUDEDIR:-'${prefix}/include'}

install_built mptcpstate-capi libmptcpstate.so

# The version of the crate, e.g. "path+file:///src/capi#mptcpstate-capi@0.1.0" -> 0.1.0.
pkgid=$("$cargo" pkgid --manifest-path "$root/Cargo.toml" -p mptcpstate-capi)
version=${pkgid##*[#@]}
minor_patch=${version#*.}
realname=libmptcpstate.so.$SONAME_MAJOR.$minor_patch

install -d "$destdir$libdir" "$destdir$libdir/pkgconfig" "$destdir$includedir"
install -m 0755 "$built" "$destdir$libdir/$realname"
ln -sf "$realname" "$destdir$libdir/libmptcpstate.so.$SONAME_MAJOR"
ln -sf "libmptcpstate.so.$SONAME_MAJOR" "$destdir$libdir/libmptcpstate.so"
install -m 0644 "$root/include/mptcpstate.h" "$destdir$includedir/mptcpstate.h"
sed -e "s|@PREFIX@|$prefix|g" \
    -e "s|@LIBDIR@|$pc_libdir|g" \
    -e "s|@INCLUDEDIR@|$pc_includedir|g" \
    -e "s|@VERSION@|$version|g" \
    "$root/capi/mptcpstate.pc.in" > "$destdir$libdir/pkgconfig/mptcpstate.pc"
chmod 0644 "$destdir$libdir/pkgconfig/mptcpstate.pc"

echo "installed libmptcpstate $version into $destdir$prefix ($realname)"
