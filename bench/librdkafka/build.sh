#!/usr/bin/env bash
# Builds librdkafka's own C producer benchmark, examples/rdkafka_performance.c, against the
# system librdkafka, so its throughput can be compared with our Rust load generator's.
#
#   bench/librdkafka/build.sh            # idempotent: skips what is already done
#   FORCE=1 bench/librdkafka/build.sh    # rebuild the binary (the download is kept)
#
# Output: target/bench/rdkafka_performance (relative to the repository root; works from any cwd).
# Source: target/bench/librdkafka-src/ (git-ignored). None of librdkafka's code is kept in this
# repository.
#
# Steps:
#  1. apt: install librdkafka-dev if missing (Debian bookworm: 2.0.2-1).
#  2. Source matching that exact version: Debian's own source package (apt-get source), fetched
#     with a private apt configuration made from the machine's own `deb` entries turned into
#     `deb-src` (the system's apt configuration is not touched). apt checks the files against
#     the signed Sources index. (The rdkafka-sys crate has no release bundling 2.0.2, so it
#     cannot serve here.)
#  3. ./configure in the source tree, only for config.h: the example includes ../src/rd.h and
#     rdtime.h (inline helpers such as rd_clock()), which include ../config.h.
#  4. gcc examples/rdkafka_performance.c with the system <librdkafka/rdkafka.h> first on the
#     include path, the source tree's src/ after it, linked with -lrdkafka. The binary calls
#     only librdkafka's public API (check: nm -u target/bench/rdkafka_performance).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/target/bench"
SRC_ROOT="$OUT/librdkafka-src"
BIN="$OUT/rdkafka_performance"
mkdir -p "$OUT" "$SRC_ROOT"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "build.sh: needs root (or sudo) for apt" >&2; exit 1; }
    SUDO=(sudo)
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# 1. Packages: librdkafka-dev, a C compiler, and make/pkg-config for librdkafka's configure.
need=()
for p in librdkafka-dev gcc make pkg-config; do installed "$p" || need+=("$p"); done
if [ "${#need[@]}" -gt 0 ]; then
    echo "build.sh: apt-get install ${need[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
DEB_VERSION="$(dpkg-query -W -f='${Version}' librdkafka-dev)"   # e.g. 2.0.2-1
UPSTREAM="${DEB_VERSION#*:}"
UPSTREAM="${UPSTREAM%-*}"                                        # e.g. 2.0.2
SRC="$SRC_ROOT/librdkafka-$UPSTREAM"

# 2. Source of that exact version.
if [ ! -f "$SRC/examples/rdkafka_performance.c" ]; then
    APT="$SRC_ROOT/apt"
    rm -rf "$APT"
    mkdir -p "$APT/lists/partial" "$APT/sources.list.d"
    : > "$APT/sources.list"
    # One-line format: every active `deb` line becomes a `deb-src` line.
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" >> "$APT/sources.list"
    done
    # deb822 format: the same entries with Types: deb-src.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        sed 's/^Types:.*/Types: deb-src/' "$f" > "$APT/sources.list.d/$(basename "$f")"
    done
    APT_OPTS=(-o "Dir::Etc::SourceList=$APT/sources.list"
              -o "Dir::Etc::SourceParts=$APT/sources.list.d"
              -o "Dir::State::Lists=$APT/lists"
              -o "APT::Sandbox::User=root")
    echo "build.sh: fetching the source of librdkafka $DEB_VERSION"
    apt-get "${APT_OPTS[@]}" update -qq
    (cd "$SRC_ROOT" && apt-get "${APT_OPTS[@]}" source --download-only -qq "librdkafka=$DEB_VERSION")
    ORIG="$(ls "$SRC_ROOT"/librdkafka_"$UPSTREAM".orig.tar.* | head -n 1)"
    rm -rf "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    tar -xf "$ORIG" -C "$SRC.tmp" --strip-components=1
    rm -rf "$SRC"
    mv "$SRC.tmp" "$SRC"
fi

# 3. config.h (mklove's configure; a few seconds; it only probes, it downloads nothing). Its log
#    goes outside the tree: mklove loads every configure.<name> file there as a module.
if [ ! -f "$SRC/config.h" ]; then
    echo "build.sh: ./configure (for config.h)"
    (cd "$SRC" && ./configure > "$SRC_ROOT/configure.log" 2>&1) || {
        tail -n 30 "$SRC_ROOT/configure.log" >&2
        exit 1
    }
fi

# 4. The binary.
if [ -n "${FORCE:-}" ] || [ ! -x "$BIN" ] || [ "$SRC/examples/rdkafka_performance.c" -nt "$BIN" ]; then
    echo "build.sh: gcc rdkafka_performance.c"
    gcc -O2 -g -Wall \
        -I/usr/include/librdkafka -I"$SRC/src" \
        -o "$BIN.tmp" "$SRC/examples/rdkafka_performance.c" \
        -lrdkafka -lpthread -lm
    mv "$BIN.tmp" "$BIN"
fi

# The example must run against the same librdkafka it was compiled for. (-h is not an option:
# it prints the usage, with the library's version, and exits 1.)
usage="$("$BIN" -h 2>&1 || true)"
case "$usage" in
    *"librdkafka version $UPSTREAM "*) ;;
    *)
        echo "build.sh: $BIN does not report librdkafka $UPSTREAM:" >&2
        grep 'librdkafka version' <<<"$usage" >&2 || true
        exit 1
        ;;
esac
echo "build.sh: $BIN (librdkafka $UPSTREAM)"
