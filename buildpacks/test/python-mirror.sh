#!/usr/bin/env bash
# Prepares a local Python mirror for the tests (a stand-in for python-build-standalone's
# releases, as an operator would point WHARF_PYTHON_MIRROR at): builds CPython from Debian's
# source of it once per machine, relocatable (a static libpython: the interpreter finds its
# lib/ beside bin/ wherever it is copied), packs it as python-build-standalone's
# `install_only` tarball and writes the list uv reads with its sha256.
#
# Usage: buildpacks/test/python-mirror.sh [DIR]   (default /var/cache/wharf-tests/python-mirror)
# Prints DIR on the last line. A second run with the mirror in place does nothing.
#
# The mirror's layout (what bin/runtime of the python buildpack expects under
# WHARF_PYTHON_MIRROR; serve DIR over HTTP as it is):
#   download-metadata.json   uv's list of downloads: one entry per interpreter, as in uv's own
#                            crates/uv-python/download-metadata.json ({"cpython-3.13.5-linux-
#                            x86_64-gnu": {"name": "cpython", "arch": {"family": "x86_64",
#                            "variant": null}, "os": "linux", "libc": "gnu", "major": 3,
#                            "minor": 13, "patch": 5, "prerelease": "", "url": URL,
#                            "sha256": HEX, "variant": null, "build": TAG}}); URL is absolute
#                            or relative to the list
#   TAG/cpython-VERSION+TAG-x86_64-unknown-linux-gnu-install_only.tar.gz
#                            python-build-standalone's own names, so a copy of its releases
#                            (plus the list, e.g. uv's own file filtered to what was copied)
#                            is a mirror too
set -euo pipefail

MIRROR=${1:-/var/cache/wharf-tests/python-mirror}
# Debian 13's CPython 3.13 source (the .orig tarball is python.org's release; the sha256 is
# the one Debian's Sources index lists for it).
PYTHON_VERSION=3.13.5
SOURCE_URL=http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_3.13.5.orig.tar.xz
SOURCE_SHA256=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
BUILD_TAG=20250101
TRIPLE=x86_64-unknown-linux-gnu
ARCHIVE="$BUILD_TAG/cpython-$PYTHON_VERSION+$BUILD_TAG-$TRIPLE-install_only.tar.gz"
BUILD_DEPS=(build-essential pkg-config libssl-dev libsqlite3-dev zlib1g-dev libffi-dev libbz2-dev
  liblzma-dev libreadline-dev libncurses-dev libgdbm-dev uuid-dev xz-utils)

if [ "$(uname -m)" != x86_64 ]; then
  echo "python-mirror.sh: only x86_64 is supported (this machine is $(uname -m))" >&2
  exit 1
fi

if [ -f "$MIRROR/download-metadata.json" ] && [ -f "$MIRROR/$ARCHIVE" ] &&
  grep -q "$(sha256sum "$MIRROR/$ARCHIVE" | cut -d' ' -f1)" "$MIRROR/download-metadata.json"; then
  echo "$MIRROR"
  exit 0
fi

missing=()
for package in "${BUILD_DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing the build dependencies: ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

mkdir -p "$(dirname "$MIRROR")"
WORK=$(mktemp -d "$(dirname "$MIRROR")/.python-mirror.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "Downloading $SOURCE_URL" >&2
curl -fsSL --retry 3 -o "$WORK/source.tar.xz" "$SOURCE_URL"
echo "$SOURCE_SHA256  $WORK/source.tar.xz" | sha256sum -c --quiet -
mkdir "$WORK/source"
tar -xJf "$WORK/source.tar.xz" -C "$WORK/source" --strip-components=1

echo "Building CPython $PYTHON_VERSION (a few minutes)" >&2
# /install is python-build-standalone's prefix too; nothing depends on it at run time.
(
  cd "$WORK/source"
  ./configure --prefix=/install --without-ensurepip --disable-test-modules \
    --with-computed-gotos >"$WORK/configure.log" 2>&1 || { tail -n 40 "$WORK/configure.log" >&2; exit 1; }
  make -j"$(nproc)" >"$WORK/make.log" 2>&1 || { tail -n 40 "$WORK/make.log" >&2; exit 1; }
  make install DESTDIR="$WORK/stage" >"$WORK/install.log" 2>&1 || { tail -n 40 "$WORK/install.log" >&2; exit 1; }
)
mv "$WORK/stage/install" "$WORK/python"
minor=${PYTHON_VERSION%.*}
rm -rf "$WORK/python/lib/python$minor/test" "$WORK/python/lib/python$minor/idlelib" \
  "$WORK/python/lib/python$minor/config-$minor-x86_64-linux-gnu/libpython$minor.a"
find "$WORK/python" -name __pycache__ -prune -exec rm -rf {} +
strip --strip-unneeded "$WORK/python/bin/python$minor" "$WORK/python/lib/python$minor"/lib-dynload/*.so
ln -sf "python$minor" "$WORK/python/bin/python"

# The interpreter must run from wherever it is copied, with the modules apps need.
cp -a "$WORK/python" "$WORK/moved"
"$WORK/moved/bin/python3" -I -c "import ssl, sqlite3, ctypes, zlib, bz2, lzma, readline, uuid, hashlib, decimal, sys; assert sys.prefix == '$WORK/moved', sys.prefix"

mkdir -p "$WORK/mirror/$BUILD_TAG"
tar -C "$WORK" -czf "$WORK/mirror/$ARCHIVE" python
sha256=$(sha256sum "$WORK/mirror/$ARCHIVE" | cut -d' ' -f1)
/usr/bin/python3 -I - "$WORK/mirror/download-metadata.json" "$PYTHON_VERSION" "$ARCHIVE" "$sha256" "$BUILD_TAG" <<'EOF'
import json, sys
path, version, archive, sha256, build = sys.argv[1:]
major, minor, patch = (int(part) for part in version.split("."))
entry = {
    "name": "cpython", "arch": {"family": "x86_64", "variant": None}, "os": "linux",
    "libc": "gnu", "major": major, "minor": minor, "patch": patch, "prerelease": "",
    "url": archive, "sha256": sha256, "variant": None, "build": build,
}
with open(path, "w") as f:
    json.dump({f"cpython-{version}-linux-x86_64-gnu": entry}, f, indent=2)
EOF

rm -rf "$MIRROR.old"
if [ -e "$MIRROR" ]; then
  mv -T "$MIRROR" "$MIRROR.old"
fi
mv -T "$WORK/mirror" "$MIRROR"
rm -rf "$MIRROR.old"
echo "$MIRROR"
