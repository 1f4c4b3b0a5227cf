#!/bin/sh
# Builds the VM test environment's kernel and base initramfs into $1 (a cache directory):
#   $1/vmlinuz        Debian's 6.1 cloud kernel (apt-get download + dpkg-deb -x: nothing is installed on the host)
#   $1/base.cpio      an initramfs root: busybox-static, node + the runtime npm packages, libbpf and the other
#                     shared libraries `ldd` lists, iproute2 (ip, nstat, tc), nft, the kernel's network modules
#                     with a modules.dep, and /init (test/env/vm/init.sh)
#   $1/kernel-version the kernel release (uname -r inside the VM)
# The checkout itself is not in it: test/env/vm/index.ts appends a small second cpio per boot.
# Uncompressed cpio on purpose: under TCG (no KVM here, see test/env/vm/README.md) decompressing costs
# seconds, copying does not.
set -eu
out="$1"
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
work="$out/work"
rm -rf "$work" && mkdir -p "$work/deb" "$work/root"
root="$work/root"

# 1. The kernel: a package already in apt's cache, else the one linux-image-cloud-amd64 depends on.
deb=$(ls /var/cache/apt/archives/linux-image-6.1.0-*-cloud-amd64_*_amd64.deb 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$deb" ]; then
  pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-6/{print $2; exit}')
  [ -n "$pkg" ] || { echo "vm build: no linux-image-6.1.0-*-cloud-amd64 in the apt lists (apt-get update?)" >&2; exit 1; }
  (cd "$work/deb" && apt-get download -qq "$pkg") || { echo "vm build: apt-get download $pkg failed" >&2; exit 1; }
  deb=$(ls "$work"/deb/*.deb | head -1)
fi
dpkg-deb -x "$deb" "$work/kernel"
kver=$(ls "$work/kernel/lib/modules" | head -1)
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"

# 2. The root tree.
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/lib64" "$root/etc" "$root/proc" \
  "$root/sys" "$root/dev" "$root/run" "$root/tmp" "$root/var/run" "$root/repo" "$root/vm"
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do
  # `busybox` itself is in the list: a symlink to itself loops (the kernel fails /init with -40, ELOOP)
  [ "$a" = busybox ] && continue
  [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
# Programs from the host (merged /usr: /bin and /usr/bin are the same place on the host).
copy_bin() {
  src=$(command -v "$1") || { echo "vm build: $1 not found on the host" >&2; exit 1; }
  rm -f "$root/usr/sbin/$1" && cp -L "$src" "$root/usr/sbin/$1"
  copy_libs "$src"
}
copy_libs() {
  ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
# ss, and the dns scenario's real DNS tools: dig (client), unbound (server), dnsmasq (its failing upstream);
# bpftool: the all-probes agent scenario lists the kernel's BPF links and programs with it
for b in ip nstat tc nft ss dig unbound dnsmasq bpftool; do copy_bin "$b"; done
ln -sf /usr/sbin/ip "$root/sbin/ip"
# libbpf is opened by koffi (dlopen), so ldd of node does not list it.
for l in libbpf.so.1 libelf.so.1 libz.so.1 libzstd.so.1; do
  p=$(ldconfig -p | awk -v l="$l" '$1==l && /x86-64/{print $NF; exit}')
  [ -n "$p" ] || { echo "vm build: $l not found (bootstrap installs libbpf1)" >&2; exit 1; }
  mkdir -p "$root$(dirname "$p")" && cp -L "$p" "$root$p" && copy_libs "$p"
done
# node and the runtime npm packages (no biome, typescript, type declarations or the node package's extras).
mkdir -p "$root/repo/node_modules/.bin" "$root/repo/node_modules/node/bin"
cp -L "$repo/node_modules/node/bin/node" "$root/repo/node_modules/node/bin/node"
ln -s ../node/bin/node "$root/repo/node_modules/.bin/node"
ln -s /repo/node_modules/node/bin/node "$root/usr/bin/node"
copy_libs "$repo/node_modules/node/bin/node"
for d in "$repo"/node_modules/* "$repo"/node_modules/.package-lock.json; do
  n=$(basename "$d")
  case "$n" in node | typescript | @biomejs | @types | .bin) continue ;; esac
  cp -a "$d" "$root/repo/node_modules/$n"
done
for so in $(find "$root/repo/node_modules" -name '*.node'); do copy_libs "$so"; done

# 3. Kernel modules the tests need (veth, nf_tables, sch_ingress/cls_bpf, *_diag, conntrack) with their
# dependencies, and a modules.dep so that the kernel's autoload (request_module → /sbin/modprobe) works.
mdst="$root/lib/modules/$kver"
mkdir -p "$mdst/kernel/drivers"
for d in net lib crypto arch; do
  [ -d "$work/kernel/lib/modules/$kver/kernel/$d" ] && cp -a "$work/kernel/lib/modules/$kver/kernel/$d" "$mdst/kernel/"
done
cp -a "$work/kernel/lib/modules/$kver/kernel/drivers/net" "$mdst/kernel/drivers/"
cp "$work/kernel/lib/modules/$kver"/modules.builtin* "$mdst/" 2>/dev/null || true
/bin/busybox depmod -b "$root" "$kver"
echo "$kver" > "$root/etc/kernel-version"

# 4. /init, libc's name services, a passwd for tools that look up users.
cp "$repo/test/env/vm/init.sh" "$root/init" && chmod 755 "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$root/etc/hosts"
: > "$root/etc/resolv.conf"
mkdir -p "$root/etc/iproute2" "$root/var/run/netns" "$root/root"

(cd "$root" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) > "$out/base.cpio.tmp"
mv "$out/base.cpio.tmp" "$out/base.cpio"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$kver" > "$out/kernel-version"
rm -rf "$work"
