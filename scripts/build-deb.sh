#!/usr/bin/env bash
# Builds the Debian package with debhelper (debian/), into target/debian/ or --out DIR.
#
#   scripts/build-deb.sh                        # release build of the binary, then the package
#   scripts/build-deb.sh --binary PATH          # package a stockade binary that is already built
#   scripts/build-deb.sh --out DIR              # where the .deb goes (default target/debian)
#
# Needs debhelper and dpkg-dev (apt-get install debhelper); the Rust toolchain is cargo's.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out="target/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "build-deb.sh: unknown argument $1 (use --binary PATH, --out DIR)" >&2; exit 2 ;;
    esac
done
command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || {
    echo "build-deb.sh: debhelper is missing; install it with 'apt-get install debhelper'" >&2
    exit 3
}
if [ -n "$binary" ]; then
    binary=$(realpath "$binary")
    [ -x "$binary" ] || { echo "build-deb.sh: $binary is not an executable" >&2; exit 2; }
fi
mkdir -p "$out"
out=$(realpath "$out")
# -b: binary only; -uc -us: unsigned; -nc: keep target/ (no clean); -d: the Rust toolchain is
# rustup's, not a Build-Depends dpkg can see. Without a debug-symbol package when packaging a
# prebuilt (test) binary.
if [ -n "$binary" ]; then
    export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-} noautodbgsym"
fi
STOCKADE_BINARY="$binary" DEB_OUT="$out" dpkg-buildpackage -b -uc -us -nc -d --buildinfo-option="-u$out" --buildinfo-option="-O$out/stockade.buildinfo" --changes-option="-u$out" --changes-option="-O$out/stockade.changes" >"$out/build.log" 2>&1 || {
    tail -40 "$out/build.log" >&2
    echo "build-deb.sh: the package build failed; the whole log is $out/build.log" >&2
    exit 1
}
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
rm -rf debian/stockade debian/.debhelper debian/generated debian/files debian/*.substvars debian/debhelper-build-stamp debian/*.debhelper.log debian/*.debhelper
echo "$out/stockade_${version}_${arch}.deb"
