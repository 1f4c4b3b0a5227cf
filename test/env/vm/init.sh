#!/bin/sh
# /init of the VM test environment (test/env/vm/build.sh puts it at the initramfs root).
# Mounts what podnet and the tests need, loads the network modules, runs /vm/cmd.sh (appended per boot
# by test/env/vm/index.ts) and powers off. Lines starting with @@VM are for the host.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run && mkdir -p /run/netns
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
# Without this the kernel cannot autoload modules (inet_diag, nf_conntrack_netlink: sock_diag and ctnetlink
# would look absent, errno 2 / 22 — an artefact of a bare initramfs, not of the kernel).
echo /sbin/modprobe > /proc/sys/kernel/modprobe
for m in veth nf_tables nft_numgen nft_reject_inet nft_ct nf_conntrack nf_conntrack_netlink inet_diag \
  tcp_diag udp_diag raw_diag sch_ingress cls_bpf sch_tbf sch_fq_codel; do
  modprobe "$m" 2>/dev/null || echo "@@VM {\"warn\":\"modprobe $m failed\"}"
done
ip link set lo up
echo "@@VM {\"booted\":\"$(uname -r)\",\"uptime\":\"$(cut -d' ' -f1 /proc/uptime)\"}"
rc=0
if [ -f /vm/cmd.sh ]; then
  cd /repo && sh /vm/cmd.sh
  rc=$?
fi
echo "@@VM {\"exit\":$rc}"
sync
poweroff -f
