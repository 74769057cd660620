#!/bin/sh
# Checks the installed library: soname, symlinks, exported symbols, and that a test
# program links against the soname.
#
#   check_library.sh LIBDIR HEADER PROGRAM
set -eu
libdir=$1
header=$2
program=$3
fail=0
bad() { echo "FAIL $*"; fail=1; }

soname=$(readelf -d "$libdir/libmptcpstate.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libmptcpstate.so.1 ] && echo "ok   soname $soname" ||
    bad "soname is '$soname', expected libmptcpstate.so.1"

[ "$(readlink "$libdir/libmptcpstate.so")" = libmptcpstate.so.1 ] &&
    echo "ok   libmptcpstate.so -> libmptcpstate.so.1" ||
    bad "libmptcpstate.so does not point to libmptcpstate.so.1"
real=$(readlink "$libdir/libmptcpstate.so.1" || true)
case "$real" in
    libmptcpstate.so.1.*) [ -f "$libdir/$real" ] && echo "ok   libmptcpstate.so.1 -> $real" ||
        bad "$real missing" ;;
    *) bad "libmptcpstate.so.1 points to '$real'" ;;
esac

needed=$(readelf -d "$program" | sed -n 's/.*Shared library: \[\(libmptcpstate[^]]*\)\]/\1/p')
[ "$needed" = libmptcpstate.so.1 ] && echo "ok   $(basename "$program") needs $needed" ||
    bad "$(basename "$program") needs '$needed', expected libmptcpstate.so.1"

# Exported functions and declared functions are the same set: the header cannot drift
# from the symbols.
exported=$(nm -D --defined-only "$libdir/libmptcpstate.so" | awk '$2 == "T" { print $3 }' | sort)
declared=$(grep -v '^ *\(\*\|/\*\|//\)' "$header" | grep -o 'mptcpstate_[a-z_]*(' | tr -d '(' | sort -u)
if [ "$exported" = "$declared" ]; then
    echo "ok   exported symbols = declared functions:" $exported
else
    bad "exported symbols differ from the header"
    echo "  exported: " $exported
    echo "  declared: " $declared
fi
other=$(nm -D --defined-only "$libdir/libmptcpstate.so" | awk '$2 != "T" && $2 != "A" { print $3 }')
[ -z "$other" ] && echo "ok   no other defined dynamic symbols" ||
    bad "other exported symbols: $other"
exit $fail
