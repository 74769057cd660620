#!/bin/sh
# Runs a test under valgrind's memcheck; fails on any memory error or definite/indirect leak.
#
#   valgrind.sh LOGFILE PROGRAM [ARGS...]
#
# The program's output goes to the terminal, valgrind's report to LOGFILE (printed whole
# when it fails, summarised when it passes). No suppressions are needed: the Rust runtime
# in libmptcpstate frees what it allocates per call and per thread, and a library has no
# Rust `main` that would leave process-lifetime allocations behind. Set VALGRIND to
# override the command (e.g. VALGRIND="valgrind --track-origins=yes").
set -u
log=$1
shift
# A missing valgrind is a failure, never a run without it (VALGRIND= in make skips this
# script altogether, on purpose).
vg=${VALGRIND:-valgrind}
if ! command -v "${vg%% *}" >/dev/null 2>&1; then
    echo "valgrind.sh: ${vg%% *} is not installed (scripts/setup.sh installs it); not running $1 without it" >&2
    exit 1
fi
${VALGRIND:-valgrind} --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect --log-file="$log" "$@"
rc=$?
if [ "$rc" -eq 99 ]; then
    echo "valgrind: errors in $*:" >&2
    cat "$log" >&2
    exit 1
fi
sed -n -e 's/^==[0-9]*== //' -e '/ERROR SUMMARY\|in use at exit\|definitely lost\|indirectly lost\|All heap blocks/p' "$log" |
    sed "s|^|valgrind($(basename "$1")): |"
exit "$rc"
