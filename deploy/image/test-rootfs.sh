#!/bin/sh
# The image, built without a container engine: deploy/image/Containerfile's runtime stage in a clean Debian 12
# root, then podnet started in it via chroot as uid 65532 with only the listed capabilities.
#
#   sh deploy/image/test-rootfs.sh [--keep]        (as root, from anywhere; ~2-6 min, needs the Debian mirror and the npm registry)
#
# 1. debootstrap --variant=minbase bookworm (what debian:bookworm-slim is made of).
# 2. The Containerfile's COPY lines, its deps stage (`npm ci --omit=dev` on package.json + lock), its build
#    stage (`npm ci`, then scripts/build.sh compiling dist/ from the sources it copies), and
#    Node 24 at /usr/local/bin/node (the upstream linux-x64 build from the `node` npm package = the binary the
#    official node:24-bookworm-slim image carries) — deploy/image/stage.ts.
# 3. The Containerfile's RUN commands, verbatim, in the chroot (apt-get install libbpf1 ..., setcap, useradd).
# 4. podnet as the image's USER with the pod's bounding set (in the chroot, setpriv drops the bounding set to
#    the list and changes to the image's uid; exec of node then gives it only its file capabilities ∩ the
#    bounding set — what runc does for a non-root container): preflight, `podnet probes`, a short `podnet run` answering /healthz, /status,
#    /metrics, all through the ENTRYPOINT's argv (node flags + dist/ JavaScript); the `podnet run` records
#    every module it loads (a module.registerHooks hook given with --import), which must all be dist/
#    JavaScript, no .ts; then the same with one capability removed, which must be named.
# Not covered here: pulling node:24-bookworm-slim itself (no registry access) and the OCI packaging.
# Prints "N passed, M failed" at the end; exit status 1 when a check failed.
set -eu
cd "$(dirname "$0")/../.."
REPO=$(pwd)
NODE="$REPO/node_modules/.bin/node"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOT=/tmp/pnd$$-rootfs
KEEP=""
[ "${1:-}" = "--keep" ] && KEEP=1
SLEEP_PID=""
PODNET_PID=""
passed=0
failed=0

cleanup() {
  [ -n "$PODNET_PID" ] && kill "$PODNET_PID" 2>/dev/null || true
  [ -n "$SLEEP_PID" ] && kill "$SLEEP_PID" 2>/dev/null || true
  sleep 1
  for m in "$ROOT/dev" "$ROOT/sys" "$ROOT/proc"; do
    if mountpoint -q "$m" 2>/dev/null; then umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; fi
  done
  # Never delete through a mount: if anything is still mounted under the root, leave the root alone.
  if grep -q " $ROOT/" /proc/mounts; then
    echo "test-rootfs.sh: mounts remain under $ROOT; not removing it" >&2
  elif [ -z "$KEEP" ]; then
    rm -rf --one-file-system "$ROOT"
  else
    echo "kept $ROOT"
  fi
}
trap cleanup EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }
check() { # check NAME COMMAND...
  name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
  fi
}

[ "$(id -u)" = 0 ] || { echo "test-rootfs.sh: run as root" >&2; exit 2; }
if ! command -v debootstrap >/dev/null 2>&1; then
  step "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
fi

CAPS=$("$NODE" deploy/image/containerfile.ts caps)
USERSPEC=$("$NODE" deploy/image/containerfile.ts user)
# The ENTRYPOINT argv: node, its flags, the compiled entry script (no spaces in any of them).
ENTRY=$("$NODE" deploy/image/containerfile.ts entrypoint)
set -- $ENTRY
ENTRY_NODE=$1
shift
ENTRY_FLAGS=""
while [ $# -gt 1 ]; do ENTRY_FLAGS="$ENTRY_FLAGS $1"; shift; done
ENTRY_SCRIPT=$1
PREFLIGHT="$(dirname "$ENTRY_SCRIPT")/preflight.js"

step "debootstrap --variant=minbase bookworm $ROOT"
t0=$(date +%s)
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >/tmp/pnd$$-debootstrap.log 2>&1 || {
  tail -20 /tmp/pnd$$-debootstrap.log
  exit 1
}
rm -f /tmp/pnd$$-debootstrap.log
echo "debootstrap: $(( $(date +%s) - t0 )) s, $(du -smx "$ROOT" | cut -f1) MiB"

step "COPY lines, npm ci --omit=dev, the build stage (npm ci, scripts/build.sh), node 24 at /usr/local/bin/node"
"$NODE" deploy/image/stage.ts "$ROOT" --npm-ci --no-setcap

step "the Containerfile's RUN commands in the chroot"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# Fresh instances only, nothing bound from the host: a private tmpfs /dev with the few nodes a container
# gets, a new procfs (same PID namespace: the host's processes, as under hostPID) and a read-only sysfs
# (kernel BTF at /sys/kernel/btf).
mount -t proc proc "$ROOT/proc"
mount -t sysfs -o ro sysfs "$ROOT/sys"
mount -t tmpfs -o mode=755,size=1m,nosuid tmpfs "$ROOT/dev"
for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
  set -- $n
  mknod -m 666 "$ROOT/dev/$1" c "$2" "$3"
done
ln -s /proc/self/fd "$ROOT/dev/fd"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
"$NODE" deploy/image/containerfile.ts run | while IFS= read -r cmd; do
  echo "RUN $cmd" | cut -c1-160
  chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive /bin/sh -ec "$cmd" >/tmp/pnd$$-run.log 2>&1 || {
    tail -20 /tmp/pnd$$-run.log
    exit 1
  }
done
rm -f "$ROOT/usr/sbin/policy-rc.d" /tmp/pnd$$-run.log
echo "image root: $(du -smx "$ROOT" | cut -f1) MiB"

step "image contents"
check "libbpf.so.1 installed" test -e "$ROOT/usr/lib/x86_64-linux-gnu/libbpf.so.1"
check "no compiler (cc, gcc, clang, bpftool)" sh -c "! chroot '$ROOT' sh -c 'command -v cc || command -v gcc || command -v clang || command -v bpftool'"
check "setcap removed again (libcap2-bin purged)" sh -c "! chroot '$ROOT' sh -c 'command -v setcap'"
check "node has the file capabilities" sh -c "getcap '$ROOT/usr/local/bin/node' | grep -q 'cap_bpf.*=p\|=p'"
check "user $USERSPEC exists" sh -c "chroot '$ROOT' id podnet | grep -q 'uid=${USERSPEC%%:*}'"
check "node 24" sh -c "chroot '$ROOT' /usr/local/bin/node --version | grep -q '^v24\.'"
check "the ENTRYPOINT's script is in the image" test -f "$ROOT$ENTRY_SCRIPT"
check "no TypeScript source in the image (outside node_modules)" \
  sh -c "test -z \"\$(find '$ROOT/opt/podnet' -path '$ROOT/opt/podnet/node_modules' -prune -o -name '*.ts' -print | head -n 1)\""
check "no typescript package in the image" test ! -e "$ROOT/opt/podnet/node_modules/typescript"

# as_image BOUNDING CMD...: run CMD in the image root as its USER with this bounding set. chroot, setpriv
# and env each exec the next: `(exec_as_image ...) &` has the PID of the final program.
as_image() { (exec_as_image "$@"); }
exec_as_image() {
  bounding=$1
  shift
  exec chroot "$ROOT" /usr/bin/setpriv --bounding-set="-all,$bounding" --inh-caps=-all \
    --reuid="${USERSPEC%%:*}" --regid="${USERSPEC##*:}" --clear-groups -- \
    /usr/bin/env -i PATH=/usr/bin:/bin K8S_NODE_NAME=rootfs-test $EXTRA_ENV "$@"
}
EXTRA_ENV=

sleep 600 &
SLEEP_PID=$!

step "preflight as $USERSPEC with the bounding set $CAPS"
check "every capability effective and every operation works" \
  as_image "$CAPS" $ENTRY_NODE $ENTRY_FLAGS "$PREFLIGHT" --pid "$SLEEP_PID"

step "preflight without CAP_SYS_PTRACE"
NO_PTRACE=$(echo "$CAPS" | sed 's/+sys_ptrace,\{0,1\}//; s/,$//')
as_image "$NO_PTRACE" $ENTRY_NODE $ENTRY_FLAGS "$PREFLIGHT" --pid "$SLEEP_PID" \
  >"$ROOT/tmp/preflight.out" 2>/dev/null || true
grep -E 'FAIL|missing' "$ROOT/tmp/preflight.out" || true
check "the missing capability is named" grep -q 'missing CAP_SYS_PTRACE: ' "$ROOT/tmp/preflight.out"
as_image "$NO_PTRACE" $ENTRY probes >/dev/null 2>"$ROOT/tmp/probes.err" || true
check "the entrypoint names it and podnet still starts" grep -q 'capability CAP_SYS_PTRACE is missing' "$ROOT/tmp/probes.err"

step "podnet probes (the image's ENTRYPOINT)"
as_image "$CAPS" $ENTRY probes 2>"$ROOT/tmp/probes.err" || true
check "podnet probes ran, all capabilities effective" grep -q 'all capabilities podnet needs are effective' "$ROOT/tmp/probes.err"

step "podnet on the image's PATH (kubectl exec ds/podnet -- podnet ...)"
# The PATH of the node:24-bookworm-slim image, which kubectl exec uses.
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
as_image "$CAPS" /usr/bin/env PATH="$IMAGE_PATH" podnet probes --json >"$ROOT/tmp/path-probes.json" 2>/dev/null || true
check "podnet probes via PATH answers JSON" sh -c "head -c 1 '$ROOT/tmp/path-probes.json' | grep -q '\['"

step "podnet run (the image's ENTRYPOINT + CMD) for a few seconds"
PORT=$(( 20000 + $$ % 20000 ))
mkdir -p "$ROOT/etc/podnet"
printf 'collection_interval: 1s\nnode_name: ${env:K8S_NODE_NAME}\nserver:\n  address: 127.0.0.1:%s\n' "$PORT" >"$ROOT/etc/podnet/config.yaml"
(exec_as_image "$CAPS" $ENTRY run --config /etc/podnet/config.yaml 2>"$ROOT/tmp/run.err") &
PODNET_PID=$!
ok=""
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.5
done
check "/healthz answers" test -n "$ok"
check "/status answers JSON" sh -c "curl -fsS http://127.0.0.1:$PORT/status | head -c 1 | grep -q '{'"
check "/metrics answers" sh -c "curl -fsS http://127.0.0.1:$PORT/metrics >/dev/null"
sleep 3
curl -fsS "http://127.0.0.1:$PORT/status" >"$ROOT/tmp/status.json" 2>/dev/null || true
# Every enabled probe loaded (running, or degraded for a reason that is not a missing permission).
check "probes loaded without permission errors" "$NODE" -e '
  const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const probes = (s.probes ?? []).filter((p) => p.enabled);
  for (const p of probes) console.log(`  ${p.name} (${p.source}): ${p.state}${p.reason ? ` - ${p.reason}` : ""}`);
  console.log(`  ${probes.length} enabled probes`);
  const bad = probes.filter((p) => !["running", "degraded"].includes(p.state) || /permi|EPERM|EACCES|capab/i.test(p.reason ?? ""));
  process.exit(bad.length === 0 ? 0 : 1);
' "$ROOT/tmp/status.json"
kill "$PODNET_PID" 2>/dev/null || true
wait "$PODNET_PID" 2>/dev/null || true
PODNET_PID=""
check "podnet ran as uid ${USERSPEC%%:*}" sh -c "! grep -q '\"level\":50' '$ROOT/tmp/run.err' && grep -q 'all capabilities podnet needs are effective' '$ROOT/tmp/run.err'"

step "podnet run through the ENTRYPOINT's argv: every module it loads is dist/ JavaScript"
# The ENTRYPOINT's argv with a hook that records every module loaded (main thread and workers), and an
# OTLP endpoint (the discard port: exports fail, which is fine) so the lazily loaded exporter and the log
# export worker load too.
cat >"$ROOT/tmp/loaded-hook.mjs" <<'HOOK'
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { isMainThread } from 'node:worker_threads';
registerHooks({
  load(url, ctx, next) {
    appendFileSync('/tmp/loaded.txt', `${isMainThread ? 'main' : 'worker'} ${url}\n`);
    return next(url, ctx);
  },
});
HOOK
EXTRA_ENV="OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
(exec_as_image "$CAPS" $ENTRY_NODE $ENTRY_FLAGS --import /tmp/loaded-hook.mjs $ENTRY_SCRIPT run \
  --config /etc/podnet/config.yaml 2>"$ROOT/tmp/run-loaded.err") &
PODNET_PID=$!
EXTRA_ENV=""
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
sleep 2.5 # a collection and an export attempt, so the exporter and the log export worker load
kill "$PODNET_PID" 2>/dev/null || true
wait "$PODNET_PID" 2>/dev/null || true
PODNET_PID=""
echo "  $(wc -l <"$ROOT/tmp/loaded.txt") modules loaded, $(grep -c -E '\.m?ts$' "$ROOT/tmp/loaded.txt") of them .ts"
check "podnet run loaded dist/receiver/cli/main.js" grep -q "^main file:///opt/podnet/dist/receiver/cli/main.js$" "$ROOT/tmp/loaded.txt"
check "the log export worker ran from dist/" grep -q "^worker file:///opt/podnet/dist/receiver/otel/log-export-worker.js$" "$ROOT/tmp/loaded.txt"
check "podnet run loaded no TypeScript module" sh -c "! grep -E '\.m?ts$' '$ROOT/tmp/loaded.txt'"

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
