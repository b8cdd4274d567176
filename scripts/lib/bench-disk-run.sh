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
# shellcheck source=scripts/lib/bench-common.sh
source "$here/bench-common.sh"

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
bench_guest_cmdline "S=$seconds E=$ioengine" "$here/bench-disk-guest.sh"

image=$image_dir/keel-bench-disk-$$.img
trap 'rm -f "$image"' EXIT

# The command line of one boot of a system, in the array `cmd`.
command_for() { # system
    case $1 in
        keel-pci|keel-mmio)
            bench_vmm_command "$1" "$kernel" "$initrd" "$cmdline" --disk "path=$image,io=$io" ;;
        qemu-microvm)
            # cache=writeback,aio=io_uring|threads: the page cache, like keel's buffered I/O.
            bench_vmm_command "$1" "$kernel" "$initrd" "$cmdline" \
                -drive "id=d0,file=$image,format=raw,if=none,cache=writeback,aio=$qemu_aio" \
                -device virtio-blk-device,drive=d0 ;;
    esac
}

# What ran, for the record.
{
    bench_meta_header
    printf 'image: %s MiB raw, fallocate, in %s (%s)\n' "$image_mib" "$image_dir" "$(stat -f -c %T "$image_dir")"
    printf 'guest: 1 vCPU, 512 MiB, kernel %s, initrd %s\n' "$kernel" "$initrd"
    printf 'fio: %s s per job, ioengine %s asked, iodepth 1, direct=1\n' "$seconds" "$ioengine"
    [[ -x $keel ]] && printf 'keel: %s (%s), io=%s\n' "$keel" "$("$keel" --version 2>&1 | head -n1)" "$io"
    printf 'qemu: %s, aio=%s\n' "$(qemu-system-x86_64 --version | head -n1)" "$qemu_aio"
    for system in $systems; do
        command_for "$system"
        printf 'command %s: %s\n' "$system" "$(bench_command_line)"
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
        bench_boot "$log" "$boot_timeout"
        status=$boot_status took=$boot_seconds
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
