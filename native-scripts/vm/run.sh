#!/usr/bin/env bash
# Runs CMD as root inside a qemu VM booting Debian's stock kernel (which has ip_vs), with this machine's
# root filesystem mounted read-only over virtio-9p, cwd = the repo root. Streams the VM's console to
# stdout and exits with CMD's exit code.
#
#   native-scripts/vm/run.sh [--] CMD [ARGS...]
#
# Exit codes: CMD's own; 124 = hard timeout (MESHD_VM_TIMEOUT seconds, default 600); 125 = harness failure
# (prepare failed, the VM died before printing its exit sentinel, or init failed: see MESHD-VM-ERROR).
# Env: MESHD_VM_TIMEOUT, MESHD_VM_TRACE (1 = print init stage times), MESHD_VM_CPU (TCG cpu model, max), MESHD_VM_MEM (MiB, 1024), MESHD_VM_SMP (2), MESHD_VM_KVM (0 = TCG, default | 1 = KVM),
#      MESHD_VM_NICE (qemu's niceness, -10),
#      MESHD_VM_MODS (comma list to modprobe instead of prepare.sh's TEST_MODULES), MESHD_VM_DIR.
# The VM has no network device (-nic none): nothing it does can reach the host's or any other network.
# Prints "vm: boot-to-ready S s, total S s (accel)" on stderr at the end.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 [--] CMD [ARGS...]" >&2; exit 125; }

vars=$("$ROOT/native-scripts/vm/prepare.sh") || { echo "vm: prepare failed" >&2; exit 125; }
KERNEL=$(sed -n 's/^KERNEL=//p' <<<"$vars")
INITRD=$(sed -n 's/^INITRD=//p' <<<"$vars")
VM=${MESHD_VM_DIR:-$ROOT/.vm}
case "$VM$ROOT" in *[[:space:]]*) echo "vm: paths with spaces are not supported ($VM)" >&2; exit 125 ;; esac

mkdir -p "$VM/run"
id="$$-$(date +%s%N)"
cmdfile="$VM/run/cmd-$id.sh"
log="$VM/run/console-$id.log"
{
  echo "set -o pipefail"
  printf 'cd %q || exit 125\n' "$PWD"
  printf '%q ' "$@"
  echo
} > "$cmdfile"
cleanup() { rm -f "$cmdfile" "$log"; }
trap cleanup EXIT

# TCG by default: on the development machine /dev/kvm exists but a KVM guest never prints a byte (nested
# virtualisation inside a microVM), so "use KVM when /dev/kvm exists" would hang. MESHD_VM_KVM=1 opts in.
accel=(-accel tcg -cpu "${MESHD_VM_CPU:-max}")
[ "${MESHD_VM_KVM:-0}" = 1 ] && accel=(-accel kvm -cpu host)

# Boot-time trims for TCG (a throwaway test guest): no CPU-bug mitigations, trust the TSC, skip
# rodata marking (and its W+X scan), crypto self-tests and the PS/2 probe: about 1 s of ~5.5 s.
append="console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off tsc=reliable no_timer_check rodata=off cryptomgr.notests i8042.noaux i8042.nokbd i8042.nopnp rdinit=/init meshd_vm=$VM meshd_cmd=$cmdfile"
[ -n "${MESHD_VM_MODS:-}" ] && append="$append meshd_mods=$MESHD_VM_MODS"
[ -n "${MESHD_VM_TRACE:-}" ] && append="$append meshd_trace=1"

# The guest is a whole test host emulated in software: on a busy machine (other labs, builds) its vCPU
# threads starve and a lab inside needs 5-10x longer (measured: 157 s quiet, > 720 s at load 13). qemu
# runs ahead of the rest: in a session of its own (the kernel's autogroup scheduler shares CPU between
# sessions first, so a plain `nice` only ranks it within its own session) whose autogroup nice is set
# to MESHD_VM_NICE (default -10; root only — otherwise, or with autogroup off, it runs unchanged). The
# guest then gets about the CPU of a host, which is what the tests inside assume. MESHD_VM_NICE=0: off.
t0=$(date +%s%N)
vm_nice=${MESHD_VM_NICE:--10}
setsid --wait bash -c 'echo "$0" > /proc/self/autogroup 2>/dev/null; exec nice -n "$0" "$@"' "$vm_nice" \
  timeout -k 5 "${MESHD_VM_TIMEOUT:-600}" qemu-system-x86_64 \
  "${accel[@]}" -m "${MESHD_VM_MEM:-1024}" -smp "${MESHD_VM_SMP:-2}" \
  -display none -monitor none -serial stdio -no-reboot -nic none \
  -kernel "$KERNEL" -initrd "$INITRD" -append "$append" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  </dev/null 2>&1 | while IFS= read -r line; do
    line=${line%$'\r'}
    case "$line" in MESHD-VM-READY*) echo "$line $(( ($(date +%s%N) - t0) / 1000000 ))ms" ;; *) echo "$line" ;; esac
  done | tee "$log"
qrc=${PIPESTATUS[0]}
t1=$(date +%s%N)

ready=$(sed -n 's/^MESHD-VM-READY uptime=\([0-9.]*\) \([0-9]*\)ms$/\2/p' "$log" | head -1)
echo "vm: boot-to-ready ${ready:-?} ms, total $(( (t1 - t0) / 1000000 )) ms (${accel[1]})" >&2
rc=$(sed -n 's/^MESHD-VM-EXIT=\([0-9]*\)$/\1/p' "$log" | tail -1)
if [ -n "$rc" ]; then exit "$rc"; fi
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then echo "vm: hard timeout after ${MESHD_VM_TIMEOUT:-600} s" >&2; exit 124; fi
echo "vm: qemu exited $qrc without the exit sentinel" >&2
exit 125
