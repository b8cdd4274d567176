# shellcheck shell=bash
# What keel's VMM benchmarks share: scripts/bench-disk and scripts/bench-net (the host halves)
# and scripts/lib/bench-{disk,net}-run.sh (the measuring halves, inside scripts/kvm-sandbox).
# Source it after common.sh; it defines functions only. A function that reads or sets one of
# its caller's variables says so.
#
# The systems every benchmark compares, each booting the same kernel and initramfs with 1 vCPU
# and 512 MiB:
#   keel-pci      keel run --transport pci
#   keel-mmio     keel run --transport mmio
#   qemu-microvm  qemu-system-x86_64 -M microvm (see bench_vmm_command)

# ---------------------------------------------------------------------------------------------
# The bench initramfs: the stock test guest's initrd.img, then an uncompressed cpio of host
# binaries, every library ldd lists for them and the dynamic loader, each at the path ldd
# resolved it to (the loader finds them there without an ld.so.cache: the default directories,
# and RUNPATHs such as fio's ceph libraries'). Linux unpacks concatenated archives one after
# the other.

# Each binary's resolved path, then every library ldd lists for any of them and the loader.
bench_binary_files() { # binary...
    local bin
    for bin; do readlink -f "$bin"; done
    # "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
    for bin; do
        ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
    done | sort -u
}

# Writes OUTPUT: STOCK-INITRD followed by a cpio holding each binary at the path it was named by
# (/usr/bin/fio) and its libraries at theirs.
bench_pack_initrd() { # stock-initrd output binary...
    local stock=$1 output=$2 stage bin f
    local -a real=()
    shift 2
    stage=$(mktemp -d "${output%/*}/.stage.XXXXXX")
    for bin; do
        real+=("$(readlink -f "$bin")")
        install -D -m 755 "${real[-1]}" "$stage$bin"
    done
    while IFS= read -r f; do
        [[ " ${real[*]} " == *" $f "* ]] && continue
        mkdir -p "$stage$(dirname "$f")"
        cp -L "$f" "$stage$f"
    done < <(bench_binary_files "$@")
    find "$stage" -exec touch -h -d @0 {} +
    {
        cat "$stock"
        # The next archive's header must start 4-byte aligned; the kernel skips zero padding.
        head -c $(((512 - $(stat -c %s "$stock") % 512) % 512)) /dev/zero
        (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible)
    } >"$output.$$"
    mv -f "$output.$$" "$output"
    rm -rf "$stage"
}

# Sets the caller's `initrd` to the bench initramfs NAME for the binaries given, building it
# when its inputs changed: the stock test guest in the caller's $guest, the binaries and their
# libraries (their sizes and times), the versions of the Debian PACKAGES they come from, and the
# functions that pack it. It lives in the caller's $bench_dir as initrd-NAME-<key>.img; older
# keys of NAME are deleted, and so are the initrd-<key>.img that bench-disk made before the
# names had the benchmark in them.
# shellcheck disable=SC2154 # guest and bench_dir are the caller's
bench_initrd() { # name "package..." binary...
    local name=$1 key f
    local -a packages
    read -r -a packages <<<"$2"
    shift 2
    key=$( {
        cat "$guest/key"
        stat -c '%s %Y' "$guest/initrd.img"
        dpkg-query -W -f='${Version}\n' "${packages[@]}" 2>/dev/null || true
        bench_binary_files "$@" | while IFS= read -r f; do printf '%s %s\n' "$f" "$(stat -L -c '%s %Y' "$f")"; done
        printf '%s\n' "$@"
        declare -f bench_binary_files bench_pack_initrd
    } | sha256sum | cut -c1-16)
    initrd=$bench_dir/initrd-$name-$key.img
    [[ -f $initrd ]] && return
    keel_log "building the bench initramfs (stock initrd + ${*##*/} + libraries)"
    find "$bench_dir" -maxdepth 1 -type f \
        \( -name "initrd-$name-*.img" -o -name 'initrd-????????????????.img' \) -delete
    bench_pack_initrd "$guest/initrd.img" "$initrd" "$@"
    keel_log "bench initramfs: $initrd ($(($(stat -c %s "$initrd") / 1048576)) MiB)"
}

# ---------------------------------------------------------------------------------------------
# The measuring half: the guest's command line, the VMM command lines, one boot, meta.txt

# Sets the caller's `cmdline`: the kernel command line of a bench guest that runs SCRIPT (a
# file; its comment lines dropped, the line SETTINGS put first) through the test init's
# keel.run=, with EXTRA parameters (keel.net=...) before it. Dies when it does not fit the
# 2048 bytes an x86 kernel takes.
bench_guest_cmdline() { # settings script [extra]
    local guest_script
    guest_script=$(printf '%s\n' "$1"; grep -v '^[[:space:]]*#' "$2")
    # nokaslr: a hung guest's instruction pointer (keel's --stats "vCPU 0 at stop") can then be
    # looked up in the kernel's System.map.
    cmdline="console=ttyS0 reboot=k panic=-1 quiet nokaslr ${3:+$3 }keel.run=$(printf '%s\n' "$guest_script" | base64 -w0)"
    ((${#cmdline} < 2048)) || keel_die "the guest command line is ${#cmdline} bytes; the limit is 2047"
}

# Sets the caller's array `cmd` to the command line of one boot of SYSTEM (keel's binary is the
# caller's $keel): KERNEL, INITRD and CMDLINE, 1 vCPU, 512 MiB, and DEVICE-ARGS, that VMM's own
# options for the devices under test (keel's --disk/--net, QEMU's -drive/-netdev with their
# -device), placed where each VMM takes its device options.
bench_vmm_command() { # system kernel initrd cmdline device-arg...
    local system=$1 kernel=$2 initrd=$3 cmdline=$4
    shift 4
    case $system in
        keel-pci|keel-mmio)
            # --stats: keel's exits and device counters land in the boot's log (printed at
            # exit; collecting them costs nothing extra, the counters always run).
            cmd=("$keel" run --kernel "$kernel" --initrd "$initrd" --cpus 1 --memory 512M
                 --transport "${system#keel-}" "$@" --stats --cmdline "$cmdline") ;;
        qemu-microvm)
            # microvm's documented lean setup (docs/system/i386/microvm.rst): no option ROMs,
            # PIT, PIC or RTC (the guest uses the LAPIC TSC-deadline timer and kvmclock). The ISA
            # serial port stays: it is the console the guest reports on, as under keel. ACPI on:
            # the stock kernel's virtio_mmio is a module, which takes no virtio_mmio.device= from
            # the kernel command line (auto-kernel-cmdline) when insmod'ed, but finds the device
            # in the DSDT, as it does under keel. force-legacy=false: virtio-mmio version 2
            # (virtio 1.x), the transport keel implements, instead of QEMU's legacy default.
            # microvm's default split irqchip stays (kernel-irqchip=on hung the guest: see
            # docs/benchmarks.md).
            # shellcheck disable=SC2054 # the commas are QEMU's
            cmd=(qemu-system-x86_64
                 -M microvm,acpi=on,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on
                 -enable-kvm -cpu host -smp 1 -m 512M
                 -nodefaults -no-user-config -nographic -no-reboot -serial stdio
                 -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
                 -global virtio-mmio.force-legacy=false
                 "$@")
            [[ -d /usr/share/qemu ]] && cmd+=(-L /usr/share/qemu) ;;
        *) keel_die "unknown system '$system'" ;;
    esac
}

# An argument as a shell word: bare when it is plain (QEMU's commas included), else %q.
bench_shell_word() {
    if [[ $1 =~ ^[A-Za-z0-9_./,=:@+%-]+$ ]]; then printf '%s' "$1"; else printf '%q' "$1"; fi
}

# The caller's array `cmd` as one line of shell words.
bench_command_line() {
    local arg line=''
    for arg in "${cmd[@]}"; do line+=" $(bench_shell_word "$arg")"; done
    printf '%s\n' "${line# }"
}

# The first lines of a run's meta.txt: when and where it ran.
bench_meta_header() {
    printf 'date: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'host: %s, kernel %s, %s CPUs, %s MiB%s\n' "$(hostname)" "$(uname -r)" "$(nproc)" \
        "$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)" \
        "$([[ ${KEEL_IN_SANDBOX:-} == 1 ]] && echo ', inside scripts/kvm-sandbox (emulated times)')"
}

# Runs the caller's `cmd` (stdin /dev/null, stdout and stderr to LOG), killed after SECONDS.
# Sets the caller's `boot_status` (its exit status) and `boot_seconds` (wall time, 1 decimal).
# shellcheck disable=SC2034 # boot_status and boot_seconds are for the caller
bench_boot() { # log seconds
    local start=$EPOCHREALTIME
    boot_status=0
    timeout --kill-after=10 "$2" "${cmd[@]}" </dev/null >"$1" 2>&1 || boot_status=$?
    boot_seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
}

# ---------------------------------------------------------------------------------------------
# Summaries

# One line per system and test of a results.tsv (tab-separated, a header line, then: system
# round name value...): "system name median... n list...": the median of each value column over
# the rounds, the number of rounds, then each column's values in round order, comma-separated.
bench_medians() { # results.tsv
    awk -F'\t' 'NR > 1 { k = $1 " " $3; if (!(k in n)) order[++keys] = k
                          sep = n[k]++ ? "," : ""; last = NF
                          for (c = 4; c <= NF; c++) list[k, c] = list[k, c] sep $c }
        function median(values,   a, n, i, j, t) {
            n = split(values, a, ",")
            for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        END {
            for (i = 1; i <= keys; i++) {
                k = order[i]; line = k
                for (c = 4; c <= last; c++) line = line " " median(list[k, c])
                line = line " " n[k]
                for (c = 4; c <= last; c++) line = line " " list[k, c]
                print line
            }
        }' "$1"
}

# Field FIELD of the caller's $medians (bench_medians' output) for SYSTEM and NAME: 3 is the
# first median; empty when that system has no such result.
# shellcheck disable=SC2154 # medians is the caller's
bench_value() { # system name field
    awk -v s="$1" -v j="$2" -v f="$3" '$1 == s && $2 == j { print $f; found = 1 } END { if (!found) print "" }' <<<"$medians"
}

# A / B with 2 decimals; "—" when either is missing or B is 0.
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "—"; else printf "%.2f", a / b }'; }

# The warning every table of a sandbox run carries.
bench_emulated_note() { # emulated(0|1)
    (($1)) || return 0
    printf 'EMULATED: measured inside scripts/kvm-sandbox (QEMU TCG L1). Absolute figures are\nmeaningless; only the ratios between systems of this run mean anything.\n'
}

# The boots of a runs.tsv (system round status ...) that did not end well, if any.
bench_incomplete_boots() { # runs.tsv
    awk -F'\t' 'NR > 1 && $3 != 0 { bad = bad sprintf("  %s round %s: %s\n", $1, $2, $3) }
        END { if (bad != "") printf "incomplete boots (exit status or \"incomplete\"):\n%s", bad }' "$1"
}
