#!/bin/sh
# Compiles podnet's TypeScript to JavaScript in dist/ (tsconfig.build.json: the receiver, the probes, the
# image entry point and the benchmarks' podnet child; not the tests), with the files the code loads next
# to it (BPF objects, the CRI proto, package.json). `npm start`, the `podnet` bin and the container image
# run dist/: Node's type stripping (amaro, a WebAssembly build of swc) costs a process ~16 MB of RSS that
# compiled JavaScript does not (benchmarks/suite/memory.ts). Tests run the .ts sources.
#
# Runs from scripts/bootstrap.sh (before `npm start` and `npm test`) and rebuilds only when dist/ is
# missing or a source is newer than its stamp, so it costs a few milliseconds when nothing changed.
# `sh scripts/build.sh --force` rebuilds regardless.
set -eu
cd "$(dirname "$0")/.."
stamp=dist/.built
if [ "${1:-}" != --force ] && [ -f "$stamp" ] &&
  [ -z "$(find receiver probes deploy/image benchmarks/lib package.json tsconfig.json tsconfig.build.json \
    scripts/build.sh -newer "$stamp" \( -name '*.ts' -o -name '*.o' -o -name '*.proto' -o -name '*.json' \
    -o -name '*.sh' \) -print 2>/dev/null | head -n 1)" ]; then
  exit 0
fi
echo "bootstrap: compiling TypeScript to dist/ (tsc -p tsconfig.build.json)"
tmp="dist.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
node_modules/.bin/tsc -p tsconfig.build.json --outDir "$tmp"
# What the code reads next to itself (new URL('./x', import.meta.url)): BPF objects, the CRI proto, and
# package.json (the version, and "type": "module" for dist/).
find receiver probes \( -name '*.bpf.o' -o -name '*.proto' \) -print | while read -r f; do
  mkdir -p "$tmp/$(dirname "$f")"
  cp -p "$f" "$tmp/$f"
done
cp -p package.json "$tmp/package.json"
touch "$tmp/.built"
rm -rf dist
mv "$tmp" dist
trap - EXIT
