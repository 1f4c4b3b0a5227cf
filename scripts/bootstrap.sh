#!/bin/sh
# Installs what podnet needs on a Debian 12 machine, then the npm packages.
# Runs before `npm start` (mode "runtime") and `npm test` (mode "test"); it must cost well under a
# second when everything is present, so every check is a cheap file or dpkg lookup.
# Written in POSIX sh: it runs before node_modules (and the Node 24 it provides) exist.
set -eu
cd "$(dirname "$0")/.."
mode="${1:-test}"

# Runtime: libbpf for the eBPF loader; iproute2 for netns helpers; libpcap to compile capture filters.
runtime_pkgs="libbpf1 libelf1 zlib1g iproute2 libpcap0.8"
# Build: compiling the BPF objects (the committed objects make this unnecessary for `npm start`).
build_pkgs="clang llvm libbpf-dev bpftool"
# Tests: real pods over CRI, kernel ground truth, Prometheus scrapes, the terminal view, benchmarks, the
# Debian 6.1 kernel VM (qemu; test/env/vm — its kernel package is downloaded, never installed).
test_pkgs="containerd runc containernetworking-plugins busybox-static prometheus prometheus-node-exporter \
iperf3 nftables conntrack tmux file curl strace libcap2-bin util-linux procps debootstrap zsh tcpdump tshark \
dnsmasq-base unbound bind9 bind9-dnsutils qemu-system-x86 linux-perf"

case "$mode" in
  runtime) want="$runtime_pkgs" ;;
  test) want="$runtime_pkgs $build_pkgs $test_pkgs" ;;
  *) echo "bootstrap: unknown mode '$mode' (expected runtime or test)" >&2; exit 2 ;;
esac

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $want 2>/dev/null | awk '$2=="installed"{print $1}')
  for p in $want; do
    case " $(echo $installed) " in *" $p "*) ;; *) missing="$missing $p" ;; esac
  done
else
  echo "bootstrap: dpkg-query not found; this bootstrap supports Debian/Ubuntu only. Install by hand:$want" >&2
fi
# kubectl (the kubectl-podnet plugin test): any kubectl will do; Debian's kubernetes-client only when there is
# none (a kubectl from another package owns /usr/bin/kubectl, and apt would refuse to overwrite it).
if [ "$mode" = test ] && ! command -v kubectl >/dev/null 2>&1; then missing="$missing kubernetes-client"; fi

if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: missing Debian packages:$missing — run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "bootstrap: installing Debian packages:$missing"
  # Package scripts must not start services (containerd, prometheus) on the host: tests start their own.
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  if ! apt-get install -y -qq --no-install-recommends $missing >/tmp/podnet-apt.log 2>&1; then
    apt-get update -qq >>/tmp/podnet-apt.log 2>&1
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >>/tmp/podnet-apt.log 2>&1 || {
      echo "bootstrap: apt-get install failed; see /tmp/podnet-apt.log" >&2
      [ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d
      exit 1
    }
  fi
  [ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d
fi

# npm packages: reinstall when node_modules is missing or older than the lockfile.
stamp=node_modules/.package-lock.json
if [ ! -x node_modules/.bin/node ] || [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "bootstrap: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

# dist/: the compiled JavaScript that `npm start`, the `podnet` bin run (scripts/build.sh; only when stale).
sh scripts/build.sh
