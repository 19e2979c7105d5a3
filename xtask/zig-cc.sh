#!/bin/sh
# The C compiler (and, installed as `c++`, the C++ compiler) of the build scripts of a cross-build:
# `cargo xtask build` writes it to <target dir>/xtask/zig-cc/{cc,c++} and sets CC and CXX to it.
# Build scripts run with TARGET set, and so does what they start. For a musl target this is zig
# through cargo-zigbuild (`cargo xtask setup cross` installs it); for any other target,
# the host's compiler.
#
# Why: librdkafka's own ./configure (rdkafka-sys) reads only plain CC/CXX, not cc-rs' CC_<target>
# that cargo-zigbuild sets, and would otherwise build librdkafka with the host's gcc against
# glibc inside a musl cross-build. (The copy lives in the target directory, a path that does not
# change with the checkout: cc-rs rebuilds when CC changes.)
tool=cc
case "$0" in *++) tool=c++ ;; esac
case "$TARGET" in
  x86_64-unknown-linux-musl | aarch64-unknown-linux-musl) ;;
  *) exec "$tool" "$@" ;;
esac
if ! command -v cargo-zigbuild >/dev/null 2>&1; then
  echo "zig-cc: building C for $TARGET needs cargo-zigbuild on PATH (cargo xtask setup cross)" >&2
  exit 1
fi
zig_target=$(echo "$TARGET" | sed 's/-unknown-/-/')
# UBSan is zig's default for C built without -O, and its runtime is not linked: keep it off.
for arg in "$@"; do
  case "$arg" in -c | -E | -S | -M | -MM) exec cargo-zigbuild zig "$tool" -- -target "$zig_target" -fno-sanitize=all "$@" ;; esac
done
# Linking: lld refuses librdkafka.so's version script without --undefined-version.
exec cargo-zigbuild zig "$tool" -- -target "$zig_target" -fno-sanitize=all -Wl,--undefined-version "$@"
