#!/usr/bin/env bash
# Builds libde265, libheif's HEVC decoder, as a static library for x86_64 musl, into PREFIX
# (PREFIX/lib/libde265.a and PREFIX/lib/pkgconfig/libde265.pc), for the static Lambda binary.
#
#   lambda-image/scripts/libde265-musl.sh PREFIX
#
# Then build with cargo-zigbuild, with libheif's cmake finding this libde265 through pkg-config:
#   PKG_CONFIG_PATH=PREFIX/lib/pkgconfig PKG_CONFIG_ALLOW_CROSS=1 \
#     cargo zigbuild -p lambda-image --bin lambda-image --target x86_64-unknown-linux-musl ...
#
# Why this way: libde265 is C++, and Debian's musl-tools has no C++ standard library for musl;
# zig (PyPI package `ziglang`) compiles C and C++ for musl with its own libc++, and
# cargo-zigbuild links the binary with it. The source is Debian's source package (with
# Debian's security patches applied by dpkg-source), so `deb-src` must be enabled and dpkg-dev
# installed. Debian ships libde265 only as a shared library for glibc.
#
# Needs: zig as `python3 -m ziglang` (or ZIG="path/to/zig"), cmake, make, apt-get source.
set -euo pipefail
prefix=${1:?usage: libde265-musl.sh PREFIX}
if [ -f "$prefix/lib/libde265.a" ] && [ -f "$prefix/lib/pkgconfig/libde265.pc" ]; then
    exit 0
fi
zig=${ZIG:-python3 -m ziglang}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-cache showsrc libde265 2>/dev/null | grep -q '^Package: libde265'; then
    echo "libde265-musl.sh: no Debian source package for libde265: enable deb-src in /etc/apt/sources.list.d/debian.sources (Types: deb deb-src) and run apt-get update" >&2
    exit 1
fi
# The newest version first (the security archive); some mirrors lack its sources, then the
# release's own.
apt-get source -qq libde265 >/dev/null 2>&1 || apt-get source -qq libde265/bookworm >/dev/null
src=$(find . -maxdepth 1 -type d -name 'libde265-*' | head -n 1)
[ -n "$src" ] || { echo "libde265-musl.sh: apt-get source unpacked nothing" >&2; exit 1; }

# cmake wants one program per compiler: small wrappers around `zig cc`/`zig c++`.
cat >zcc <<EOF
#!/bin/sh
exec $zig cc -target x86_64-linux-musl "\$@"
EOF
cat >zcxx <<EOF
#!/bin/sh
exec $zig c++ -target x86_64-linux-musl "\$@"
EOF
chmod +x zcc zcxx

cmake -S "$src" -B build -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER="$work/zcc" -DCMAKE_CXX_COMPILER="$work/zcxx" \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DBUILD_SHARED_LIBS=OFF \
    -DENABLE_SDL=OFF -DENABLE_DECODER=OFF -DENABLE_ENCODER=OFF \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
cmake --install build >/dev/null
echo "libde265-musl.sh: $(basename "$src") in $prefix"
