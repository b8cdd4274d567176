#!/usr/bin/env bash
# Usage: scripts/lib/bench-disk-run.sh --out DIR --kernel FILE --initrd FILE [--keel BIN]
#            [--systems "keel-pci keel-mmio qemu-microvm"] [--runs N] [--seconds S]
#            [--image-dir DIR] [--image-size MiB] [--io uring|sync] [--ioengine ENGINE]
#
# The measuring half of scripts/bench-disk; runs where /dev/kvm works (inside
# scripts/kvm-sandbox on this project's machines). Round after round it boots the same
# kernel and initrd (the bench initramfs: the stock test guest plus fio) once per system, in
# the same order every round (A B C A B C ...), with 1 vCPU, 512 MiB and one virtio-blk disk:
# a raw image made afresh with fallocate for every boot, always in the same directory
# (default /dev/shm: a tmpfs, the L1's own RAM inside the sandbox, never 9p). The guest runs
# scripts/lib/bench-disk-guest.sh: fio on /dev/vda.
#
# Systems:
#   keel-pci      keel run --transport pci  --disk path=IMG,io=IO
#   keel-mmio     keel run --transport mmio --disk path=IMG,io=IO
#   qemu-microvm  qemu-system-x86_64 -M microvm (KVM, ACPI on so that virtio_mmio finds the
#                 device, legacy PIC/PIT/RTC off, virtio-mmio 1.x), -drive cache=writeback,
#                 aio=io_uring for --io uring (threads for sync): the page cache like keel's
#                 buffered I/O
#
# Writes into DIR: results.tsv (system round job iops kib_s), runs.tsv (system round status
# seconds engine), one console log per boot (<system>-<round>.log), meta.txt. Exit status 0
# when every boot gave all four numbers, 1 otherwise (the results that came are kept).
set -euo pipefail
self=$(readlink -f -- "${BASH_SOURCE[0]}")
here=$(dirname -- "$self")
# shellcheck source=scripts/lib/common.sh
source "$here/common.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$self" >&2; exit 2; }

out='' kernel='' initrd='' keel='' systems='keel-pci keel-mmio qemu-microvm'
runs=3 seconds=10 image_dir=/dev/shm image_mib=256 io=uring ioengine=io_uring
while (($#)); do
    (($# >= 2)) || usage
    case $1 in
        --out) out=$2 ;;
        --kernel) kernel=$2 ;;
        --initrd) initrd=$2 ;;
        --keel) keel=$2 ;;
        --systems) systems=$2 ;;
        --runs) runs=$2 ;;
        --seconds) seconds=$2 ;;
        --image-dir) image_dir=$2 ;;
        --image-size) image_mib=$2 ;;
        --io) io=$2 ;;
        --ioengine) ioengine=$2 ;;
        *) usage ;;
    esac
    shift 2
done
[[ -n $out && -f $kernel && -f $initrd ]] || usage
[[ $runs =~ ^[1-9][0-9]*$ && $seconds =~ ^[1-9][0-9]*$ && $image_mib =~ ^[1-9][0-9]*$ ]] ||
    keel_die "--runs, --seconds and --image-size take positive integers"
[[ $ioengine =~ ^[a-z_0-9]+$ ]] || keel_die "bad --ioengine '$ioengine'"
case $io in
    uring) qemu_aio=io_uring ;;
    sync) qemu_aio=threads ;;
    *) keel_die "--io takes uring or sync, not '$io'" ;;
esac
for system in $systems; do
    case $system in
        keel-pci|keel-mmio) [[ -x $keel ]] || keel_die "$system needs --keel BIN" ;;
        qemu-microvm) command -v qemu-system-x86_64 >/dev/null || keel_die "no qemu-system-x86_64" ;;
        *) keel_die "unknown system '$system'" ;;
    esac
done
[[ -c /dev/kvm && -r /dev/kvm && -w /dev/kvm ]] || keel_die "no usable /dev/kvm here: run this through scripts/kvm-sandbox"
mkdir -p "$out" "$image_dir"

# The guest script, without its comments, after the two settings it reads.
guest_script=$(printf 'S=%s E=%s\n' "$seconds" "$ioengine"; grep -v '^[[:space:]]*#' "$here/bench-disk-guest.sh")
cmdline="console=ttyS0 reboot=k panic=-1 quiet keel.run=$(printf '%s\n' "$guest_script" | base64 -w0)"
((${#cmdline} < 2048)) || keel_die "the guest command line is ${#cmdline} bytes; the limit is 2047"

image=$image_dir/keel-bench-disk-$$.img
trap 'rm -f "$image"' EXIT

# The command line of one boot of a system, in the array `cmd`.
command_for() { # system
    case $1 in
        keel-pci|keel-mmio)
            cmd=("$keel" run --kernel "$kernel" --initrd "$initrd" --cpus 1 --memory 512M
                 --transport "${1#keel-}" --disk "path=$image,io=$io" --cmdline "$cmdline") ;;
        qemu-microvm)
            # microvm's documented lean setup (docs/system/i386/microvm.rst): no option ROMs,
            # PIT, PIC or RTC (the guest uses the LAPIC TSC-deadline timer and kvmclock). The ISA
            # serial port stays: it is the console the guest reports on, as under keel. ACPI on:
            # the stock kernel's virtio_mmio is a module, which takes no virtio_mmio.device= from
            # the kernel command line (auto-kernel-cmdline) when insmod'ed, but finds the device
            # in the DSDT, as it does under keel. force-legacy=false: virtio-mmio version 2
            # (virtio 1.x), the transport keel implements, instead of QEMU's legacy default.
            # shellcheck disable=SC2054 # the commas are QEMU's
            cmd=(qemu-system-x86_64
                 -M microvm,acpi=on,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on
                 -enable-kvm -cpu host -smp 1 -m 512M
                 -nodefaults -no-user-config -nographic -no-reboot -serial stdio
                 -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
                 -global virtio-mmio.force-legacy=false
                 -drive "id=d0,file=$image,format=raw,if=none,cache=writeback,aio=$qemu_aio"
                 -device virtio-blk-device,drive=d0)
            [[ -d /usr/share/qemu ]] && cmd+=(-L /usr/share/qemu) ;;
    esac
}

# An argument as a shell word: bare when it is plain (QEMU's commas included), else %q.
shell_word() {
    if [[ $1 =~ ^[A-Za-z0-9_./,=:@+%-]+$ ]]; then printf '%s' "$1"; else printf '%q' "$1"; fi
}

# What ran, for the record.
{
    printf 'date: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'host: %s, kernel %s, %s CPUs, %s MiB%s\n' "$(hostname)" "$(uname -r)" "$(nproc)" \
        "$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)" \
        "$([[ ${KEEL_IN_SANDBOX:-} == 1 ]] && echo ', inside scripts/kvm-sandbox (emulated times)')"
    printf 'image: %s MiB raw, fallocate, in %s (%s)\n' "$image_mib" "$image_dir" "$(stat -f -c %T "$image_dir")"
    printf 'guest: 1 vCPU, 512 MiB, kernel %s, initrd %s\n' "$kernel" "$initrd"
    printf 'fio: %s s per job, ioengine %s asked, iodepth 1, direct=1\n' "$seconds" "$ioengine"
    [[ -x $keel ]] && printf 'keel: %s (%s), io=%s\n' "$keel" "$("$keel" --version 2>&1 | head -n1)" "$io"
    printf 'qemu: %s, aio=%s\n' "$(qemu-system-x86_64 --version | head -n1)" "$qemu_aio"
    for system in $systems; do
        command_for "$system"
        printf 'command %s:' "$system"
        for arg in "${cmd[@]}"; do printf ' %s' "$(shell_word "$arg")"; done
        printf '\n'
    done
} >"$out/meta.txt"

# Bound for one boot: the guest's boot under emulation plus four fio jobs, generously.
boot_timeout=$((600 + 8 * seconds))
printf 'system\tround\tjob\tiops\tkib_s\n' >"$out/results.tsv"
printf 'system\tround\tstatus\tseconds\tengine\n' >"$out/runs.tsv"
failures=0
for ((round = 1; round <= runs; round++)); do
    for system in $systems; do
        rm -f "$image"
        fallocate -l "${image_mib}M" "$image"
        command_for "$system"
        log=$out/$system-$round.log
        start=$EPOCHREALTIME
        status=0
        timeout --kill-after=10 "$boot_timeout" "${cmd[@]}" </dev/null >"$log" 2>&1 || status=$?
        took=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
        # The console may end lines with \r; the guest reports "fio-<job>=<iops>,<KiB/s>".
        results=$(tr -d '\r' <"$log" | sed -n 's/^KEEL-TEST fio-\([a-z-]*\)=\([0-9.]*\),\([0-9.]*\)$/\1\t\2\t\3/p')
        engine=$(tr -d '\r' <"$log" | sed -n 's/^KEEL-TEST fio-engine=//p' | head -n1)
        count=0
        while IFS=$'\t' read -r job iops kib; do
            [[ -n $job ]] || continue
            printf '%s\t%s\t%s\t%s\t%s\n' "$system" "$round" "$job" "$iops" "$kib" >>"$out/results.tsv"
            count=$((count + 1))
        done <<<"$results"
        if ((count != 4)); then
            failures=$((failures + 1))
            keel_log "$system round $round: exit $status, $count of 4 results; log: $log"
            tr -d '\r' <"$log" | grep -a -E 'KEEL-TEST fio-error|error|panic' | head -n 5 >&2 || true
            [[ $status == 0 ]] && status=incomplete
        fi
        printf '%s\t%s\t%s\t%s\t%s\n' "$system" "$round" "$status" "$took" "${engine:--}" >>"$out/runs.tsv"
        keel_log "round $round/$runs $system: $count results, exit $status, ${took} s (engine ${engine:-?})"
    done
done
rm -f "$image"
((failures == 0))
