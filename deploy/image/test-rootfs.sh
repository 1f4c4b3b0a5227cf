#!/bin/sh
# The image, built without a container engine: deploy/image/Containerfile's runtime stage in a clean Debian 12
# root, then podnet started in it via chroot as uid 65532 with only the listed capabilities.
#
#   sh deploy/image/test-rootfs.sh [--keep]        (as root, from anywhere; ~3-6 min, needs the Debian mirror)
#
# 1. debootstrap --variant=minbase bookworm (what debian:bookworm-slim is made of).
# 2. The Containerfile's COPY lines and its deps stage (`npm ci --omit=dev` on package.json + lock), and
#    Node 24 at /usr/local/bin/node (the upstream linux-x64 build from the `node` npm package = the binary the
#    official node:24-bookworm-slim image carries) — deploy/image/stage.ts.
# 3. The Containerfile's RUN commands, verbatim, in the chroot (apt-get install libbpf1 ..., setcap, useradd).
# 4. podnet as the image's USER with the pod's bounding set (in the chroot, setpriv drops the bounding set to
#    the list and changes to the image's uid; exec of node then gives it only its file capabilities ∩ the
#    bounding set — what runc does for a non-root container): preflight, `podnet probes`, a short `podnet run` answering /healthz, /status,
#    /metrics; then the same with one capability removed, which must be named.
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
  for m in "$ROOT/dev" "$ROOT/sys" "$ROOT/proc"; do
    mountpoint -q "$m" 2>/dev/null && { umount -R "$m" 2>/dev/null || umount -R -l "$m" 2>/dev/null || true; }
  done
  # NEVER delete through a mount: $ROOT/dev is a bind of the host's /dev (devtmpfs), and rm -rf into it
  # deletes the host's device nodes. Refuse while anything is still mounted below $ROOT, and stay on
  # the root's own filesystem regardless.
  if grep -q " $ROOT/" /proc/self/mounts; then
    echo "test-rootfs.sh: mounts remain under $ROOT; not deleting it" >&2
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

step "debootstrap --variant=minbase bookworm $ROOT"
t0=$(date +%s)
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >/tmp/pnd$$-debootstrap.log 2>&1 || {
  tail -20 /tmp/pnd$$-debootstrap.log
  exit 1
}
rm -f /tmp/pnd$$-debootstrap.log
echo "debootstrap: $(( $(date +%s) - t0 )) s, $(du -smx "$ROOT" | cut -f1) MiB"

step "COPY lines, npm ci --omit=dev, node 24 at /usr/local/bin/node"
"$NODE" deploy/image/stage.ts "$ROOT" --npm-ci --no-setcap

step "the Containerfile's RUN commands in the chroot"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mount -t proc proc "$ROOT/proc"
mount --rbind /sys "$ROOT/sys"
mount --make-rslave "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
mount --make-rslave "$ROOT/dev"
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

# as_image BOUNDING CMD...: run CMD in the image root as its USER with this bounding set.
as_image() {
  bounding=$1
  shift
  chroot "$ROOT" /usr/bin/setpriv --bounding-set="-all,$bounding" --inh-caps=-all \
    --reuid="${USERSPEC%%:*}" --regid="${USERSPEC##*:}" --clear-groups -- \
    /usr/bin/env -i PATH=/usr/bin:/bin K8S_NODE_NAME=rootfs-test "$@"
}

sleep 600 &
SLEEP_PID=$!

step "preflight as $USERSPEC with the bounding set $CAPS"
check "every capability effective and every operation works" \
  as_image "$CAPS" /usr/local/bin/node /opt/podnet/deploy/image/preflight.ts --pid "$SLEEP_PID"

step "preflight without CAP_SYS_PTRACE"
NO_PTRACE=$(echo "$CAPS" | sed 's/+sys_ptrace,\{0,1\}//; s/,$//')
out=$(as_image "$NO_PTRACE" /usr/local/bin/node /opt/podnet/deploy/image/preflight.ts --pid "$SLEEP_PID" 2>/dev/null || true)
echo "$out" | grep -E 'FAIL|missing' || true
check "the missing capability is named" sh -c "echo '$out' | grep -q 'missing CAP_SYS_PTRACE: '"

step "podnet probes (the image's ENTRYPOINT)"
as_image "$CAPS" /usr/local/bin/node /opt/podnet/deploy/image/entrypoint.ts probes 2>"$ROOT/tmp/probes.err" || true
check "podnet probes ran, all capabilities effective" grep -q 'all capabilities podnet needs are effective' "$ROOT/tmp/probes.err"

step "podnet run (the image's ENTRYPOINT + CMD) for a few seconds"
PORT=$(( 20000 + $$ % 20000 ))
mkdir -p "$ROOT/etc/podnet"
printf 'collection_interval: 1s\nnode_name: ${env:K8S_NODE_NAME}\nserver:\n  address: 127.0.0.1:%s\n' "$PORT" >"$ROOT/etc/podnet/config.yaml"
as_image "$CAPS" /usr/local/bin/node /opt/podnet/deploy/image/entrypoint.ts run --config /etc/podnet/config.yaml \
  2>"$ROOT/tmp/run.err" &
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
curl -fsS "http://127.0.0.1:$PORT/status" 2>/dev/null | head -c 600 || true
echo
kill "$PODNET_PID" 2>/dev/null || true
wait "$PODNET_PID" 2>/dev/null || true
PODNET_PID=""
check "podnet ran as uid ${USERSPEC%%:*}" sh -c "! grep -q '\"level\":50' '$ROOT/tmp/run.err' && grep -q 'all capabilities podnet needs are effective' '$ROOT/tmp/run.err'"

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
