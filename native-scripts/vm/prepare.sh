#!/bin/sh
# Prepares the IPVS test VM under .vm/ (git-ignored). Idempotent: a second run with everything in place
# only checks and prints the paths (well under a second).
#
# Why: this machine's kernel has no ip_vs. Debian's stock kernel (linux-image-<abi>-amd64) has ip_vs, 9p
# and netfilter as modules, so we boot it under qemu with the host's root filesystem shared read-only over
# virtio-9p and run the IPVS compliance suite inside (see native-scripts/vm/run.sh).
#
# What it does (nothing is installed into the host's /boot or /lib/modules):
#   1. apt-get install qemu-system-x86 busybox-static when missing;
#   2. `apt-get download` the versioned kernel package that linux-image-amd64 depends on, `dpkg -x` it into
#      .vm/kroot, and generate modules.dep/modules.alias there with busybox depmod (the package ships none;
#      its postinst would run depmod);
#   3. builds .vm/initramfs.cpio: busybox-static, native-scripts/vm/init, and the modules needed to reach
#      the 9p root (virtio-pci, 9pnet_virtio, 9p and their deps) plus a load-order list. Every other module
#      (ip_vs, nf_tables, veth, bridge ...) is loaded inside the VM from .vm/kroot over 9p.
#
# Env: MESHD_VM_DIR (default <repo>/.vm), MESHD_VM_KPKG (e.g. linux-image-6.1.0-56-amd64; default: what
# linux-image-amd64 depends on, or the one already extracted). Prints KEY=VALUE lines on stdout
# (KERNEL=, INITRD=, KVER=); progress goes to stderr. Exits non-zero with a clear message on failure.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VM=${MESHD_VM_DIR:-$ROOT/.vm}
INIT_SRC="$ROOT/native-scripts/vm/init"
mkdir -p "$VM"
export DEBIAN_FRONTEND=noninteractive

die() { echo "vm/prepare: $*" >&2; exit 1; }
log() { echo "vm/prepare: $*" >&2; }

# --- 1. host tools ---------------------------------------------------------------------------------------
missing=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx depmod || missing="$missing busybox-static"
if [ -n "$missing" ]; then
  [ "$(id -u)" -eq 0 ] || die "need root to install:$missing"
  log "installing$missing"
  apt-get install -y -qq --no-install-recommends $missing >&2 \
    || { apt-get update -qq >&2 || true; apt-get install -y -qq --no-install-recommends $missing >&2; } \
    || die "could not install$missing (apt-get failed)"
fi
command -v qemu-system-x86_64 >/dev/null 2>&1 || die "qemu-system-x86_64 not found after install"
BB=/bin/busybox
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }
file_is_static "$BB" || die "$BB is not static (need busybox-static)"

# --- 2. kernel package -----------------------------------------------------------------------------------
KPKG=${MESHD_VM_KPKG:-}
if [ -z "$KPKG" ] && [ -f "$VM/kpkg" ] && [ -f "$VM/kroot/.complete" ]; then KPKG=$(cat "$VM/kpkg"); fi
if [ -z "$KPKG" ]; then
  dep() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1; }
  KPKG=$(dep)
  if [ -z "$KPKG" ]; then apt-get update -qq >&2 || true; KPKG=$(dep); fi
  [ -n "$KPKG" ] || die "cannot resolve the versioned kernel package (apt-cache depends linux-image-amd64 gave nothing; is the Debian archive reachable?)"
fi
KVER=${KPKG#linux-image-}

if [ ! -f "$VM/kroot/.complete" ] || [ "$(cat "$VM/kpkg" 2>/dev/null)" != "$KPKG" ]; then
  deb=$(ls "$VM"/"${KPKG}"_*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    log "downloading $KPKG"
    (cd "$VM" && apt-get download "$KPKG" >&2 2>"$VM/download.err") \
      || { apt-get update -qq >&2 || true; (cd "$VM" && apt-get download "$KPKG" >&2 2>"$VM/download.err"); } \
      || { cat "$VM/download.err" >&2; die "apt-get download $KPKG failed"; }
    deb=$(ls "$VM"/"${KPKG}"_*.deb 2>/dev/null | head -1 || true)
    [ -n "$deb" ] || die "apt-get download $KPKG produced no .deb in $VM"
  fi
  log "extracting $(basename "$deb")"
  rm -rf "$VM/kroot" "$VM/initramfs.cpio"
  dpkg -x "$deb" "$VM/kroot" || die "dpkg -x $deb failed"
  [ -d "$VM/kroot/lib/modules/$KVER" ] || die "no lib/modules/$KVER in $deb"
  log "depmod $KVER"
  "$BB" depmod -b "$VM/kroot" "$KVER" || die "busybox depmod failed"
  echo "$KPKG" > "$VM/kpkg"
  touch "$VM/kroot/.complete"
fi
KERNEL="$VM/kroot/boot/vmlinuz-$KVER"
MODDIR="$VM/kroot/lib/modules/$KVER"
[ -f "$KERNEL" ] || die "missing $KERNEL"

# Uncompressed ELF vmlinux, booted through its PVH entry point: under TCG the bzImage's own XZ
# decompressor (plus the BIOS path) costs 10-20 s before the first kernel message; qemu loading the ELF
# directly costs a few hundred ms. The payload is the XZ stream starting at the first XZ magic.
VMLINUX="$VM/vmlinux-$KVER"
if [ ! -f "$VMLINUX" ]; then
  command -v xz >/dev/null 2>&1 || { apt-get install -y -qq --no-install-recommends xz-utils >&2 || die "need xz-utils"; }
  log "extracting vmlinux from $(basename "$KERNEL")"
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$KERNEL" | head -1 | cut -d: -f1)
  [ -n "$off" ] || die "no XZ payload in $KERNEL (not CONFIG_KERNEL_XZ?)"
  tail -c +$((off + 1)) "$KERNEL" | xz -dcq > "$VMLINUX.tmp" 2>/dev/null || true  # trailing data after the stream makes xz exit 1
  [ "$(head -c 4 "$VMLINUX.tmp" | od -An -c | tr -d ' ')" = '177ELF' ] || { rm -f "$VMLINUX.tmp"; die "XZ payload of $KERNEL is not an ELF vmlinux"; }
  mv "$VMLINUX.tmp" "$VMLINUX"
fi

# Loaded at boot (dependencies resolved from modules.dep): IPVS with the schedulers the renderers use,
# conntrack/NAT, the nftables expressions both dataplanes render, veth and bridge for the test topology;
# for the 3-node lab inside the VM (test/vm/lb-ipvs-mesh.test.ts): vxlan (the overlay), nft_reject_ipv4
# (the agents' `table ip` rejects), nf_conntrack_netlink (`conntrack`), overlay (init's writable /etc).
TEST_MODULES="ip_vs ip_vs_rr ip_vs_wrr nf_conntrack nf_nat nf_tables nft_chain_nat nft_ct nft_fib_ipv4 nft_fib_inet nft_masq nft_nat nft_numgen nft_reject_inet veth bridge vxlan nft_reject_ipv4 nf_conntrack_netlink overlay"

# --- 3. initramfs ----------------------------------------------------------------------------------------
# Rebuilt when missing or older than the init script.
INITRD="$VM/initramfs.cpio"
if [ ! -f "$INITRD" ] || [ "$INIT_SRC" -nt "$INITRD" ] || [ "$0" -nt "$INITRD" ]; then
  log "building initramfs"
  STAGE="$VM/initramfs.d"
  rm -rf "$STAGE"
  mkdir -p "$STAGE/bin" "$STAGE/sbin" "$STAGE/mods" "$STAGE/lib/modules" "$STAGE/proc" "$STAGE/sys" "$STAGE/dev" "$STAGE/mnt/root" "$STAGE/tmp"
  cp "$BB" "$STAGE/bin/busybox"
  for a in $("$BB" --list); do [ "$a" = busybox ] || ln -sf busybox "$STAGE/bin/$a"; done
  ln -sf ../bin/busybox "$STAGE/sbin/modprobe"  # the kernel's module autoloader path (/proc/sys/kernel/modprobe)
  cp "$INIT_SRC" "$STAGE/init"
  chmod 755 "$STAGE/init"
  # Load order for the 9p root: dependencies first (post-order walk of modules.dep), each once.
  resolve() {
    awk -v want="$*" '
      { sub(":", "", $1); k = $1; n = split(k, p, "/"); b = p[n]; sub(/\.ko$/, "", b); gsub("-", "_", b)
        path[b] = k; deps[b] = ""; for (i = 2; i <= NF; i++) { m = split($i, q, "/"); d = q[m]; sub(/\.ko$/, "", d); gsub("-", "_", d); deps[b] = deps[b] " " d } }
      function visit(m,   i, n, a) { if (m in seen) return; seen[m] = 1
        if (!(m in path)) { print "MISSING " m; return }
        n = split(deps[m], a, " "); for (i = n; i >= 1; i--) visit(a[i]); print path[m] }
      END { n = split(want, w, " "); for (i = 1; i <= n; i++) visit(w[i]) }' "$MODDIR/modules.dep"
  }
  order=$(resolve virtio_pci 9pnet_virtio 9p)
  if echo "$order" | grep -q '^MISSING'; then die "modules not in $KPKG: $(echo "$order" | sed -n 's/^MISSING //p' | tr '\n' ' ')"; fi
  : > "$STAGE/mods/order"
  for k in $order; do cp "$MODDIR/$k" "$STAGE/mods/"; basename "$k" >> "$STAGE/mods/order"; done
  # The test set, loaded by init with insmod from the package tree over 9p in this precomputed order
  # (busybox modprobe re-parses the 1.3 MB modules.alias per call: seconds under TCG). Modules needed
  # later (an nft expression nobody listed) still autoload through /sbin/modprobe.
  extra=$(resolve $TEST_MODULES)
  if echo "$extra" | grep -q '^MISSING'; then die "modules not in $KPKG: $(echo "$extra" | sed -n 's/^MISSING //p' | tr '\n' ' ')"; fi
  echo "$extra" > "$STAGE/mods/extra"
  for k in $order; do sed -i "\|^$k\$|d" "$STAGE/mods/extra"; done
  (cd "$STAGE" && find . | "$BB" cpio -o -H newc > "$INITRD.tmp" 2>/dev/null) || die "cpio failed"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$STAGE"
fi

echo "KERNEL=$VMLINUX"
echo "INITRD=$INITRD"
echo "KVER=$KVER"
echo "MODDIR=$MODDIR"
