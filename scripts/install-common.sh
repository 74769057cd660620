# Sourced by capi/install.sh and rust/cli/install.sh (POSIX sh): the arguments and the
# build step they share.
#
#   root=CHECKOUT; . "$root/scripts/install-common.sh"      (with the script's "$@")
#
# Needs usage() from the caller. Sets: prefix (made absolute), profile and outdir (cargo
# puts the dev profile in target/debug, every other profile in target/<name>),
# target_dir, destdir, cargo. install_built PACKAGE FILE builds PACKAGE unless
# --no-build was given and sets built=<target dir>/<outdir>/FILE, which must exist.

profile=release
build=yes
prefix=
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) [ $# -ge 2 ] || usage; profile=$2; shift 2 ;;
        --profile=*) profile=${1#--profile=}; shift ;;
        --no-build) build=no; shift ;;
        -h|--help) usage ;;
        -*) echo "install.sh: unknown option $1" >&2; usage ;;
        *) [ -z "$prefix" ] || usage; prefix=$1; shift ;;
    esac
done
[ -n "$prefix" ] || usage

case "$prefix" in
    /*) ;;
    *) mkdir -p "$prefix" && prefix=$(cd "$prefix" && pwd) ;;
esac
destdir=${DESTDIR:-}
cargo=${CARGO:-cargo}
case "$profile" in
    dev|debug) profile=dev; outdir=debug ;;
    *) outdir=$profile ;;
esac
target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$target_dir" in /*) ;; *) target_dir=$root/$target_dir ;; esac

install_built() {
    if [ "$build" = yes ]; then
        "$cargo" build --manifest-path "$root/Cargo.toml" -p "$1" --profile "$profile"
    fi
    built=$target_dir/$outdir/$2
    [ -f "$built" ] || { echo "install.sh: $built not found (build it, or drop --no-build)" >&2; exit 1; }
}
