#!/bin/sh
# Builds every BPF program `probes/*/*.bpf.c` (and the loader's self-test objects
# `receiver/bpf/selftest/*.bpf.c`) into a CO-RE object next to its source (`probes/<name>/<prog>.bpf.o`),
# which is committed so `npm start` needs no compiler. Shared headers live in `probes/include/` (-I).
#
#   sh scripts/build-bpf.sh                 build all objects in place
#   sh scripts/build-bpf.sh --out DIR       build into DIR/<name>/<prog>.bpf.o (used by the test that
#                                           proves the committed objects match their sources)
#   sh scripts/build-bpf.sh --vmlinux       regenerate probes/include/vmlinux.h from the running
#                                           kernel's BTF first (bpftool), then build
#
# Compiled from the repository root with relative paths and -fdebug-prefix-map so the objects do not
# depend on where the clone lives; `llvm-strip -g` drops DWARF but keeps .BTF/.BTF.ext (CO-RE needs them).
set -eu
cd "$(dirname "$0")/.."

out=""
regen=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --vmlinux) regen=1; shift ;;
    *) echo "build-bpf: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

CLANG="${CLANG:-clang}"
STRIP="${LLVM_STRIP:-llvm-strip}"
for tool in "$CLANG" "$STRIP"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-bpf: '$tool' not found (Debian: apt-get install clang llvm libbpf-dev)" >&2; exit 1; }
done
[ -f /usr/include/bpf/bpf_helpers.h ] || { echo "build-bpf: /usr/include/bpf/bpf_helpers.h missing (Debian: apt-get install libbpf-dev)" >&2; exit 1; }

if [ -n "$regen" ] || [ ! -s probes/include/vmlinux.h ]; then
  command -v bpftool >/dev/null 2>&1 || { echo "build-bpf: bpftool not found (Debian: apt-get install bpftool)" >&2; exit 1; }
  echo "build-bpf: generating probes/include/vmlinux.h from /sys/kernel/btf/vmlinux"
  bpftool btf dump file /sys/kernel/btf/vmlinux format c > probes/include/vmlinux.h.tmp
  mv probes/include/vmlinux.h.tmp probes/include/vmlinux.h
fi

case "$(uname -m)" in
  x86_64) arch=x86 ;;
  aarch64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac

n=0
for src in probes/*/*.bpf.c receiver/bpf/selftest/*.bpf.c; do
  [ -e "$src" ] || continue
  dir=$(dirname "$src")
  base=$(basename "$src" .c)
  if [ -n "$out" ]; then
    mkdir -p "$out/$(basename "$dir")"
    obj="$out/$(basename "$dir")/$base.o"
  else
    obj="$dir/$base.o"
  fi
  "$CLANG" -g -O2 -target bpf -D__TARGET_ARCH_$arch -Wall -Werror -Wno-unused-function \
    -fdebug-prefix-map="$(pwd)=." -Iprobes/include -c "$src" -o "$obj.tmp"
  "$STRIP" -g "$obj.tmp"
  mv "$obj.tmp" "$obj"
  n=$((n + 1))
  echo "build-bpf: $src -> $obj ($(wc -c < "$obj") bytes)"
done
echo "build-bpf: built $n object(s)"
