#!/usr/bin/env bash
# Usage: scripts/lib/bench-net-run.sh --out DIR --kernel FILE --initrd FILE [--keel BIN]
#            [--systems "keel-pci keel-mmio qemu-microvm"] [--runs N] [--seconds S]
#
# The measuring half of scripts/bench-net; runs as root where /dev/kvm works (inside
# scripts/kvm-sandbox on this project's machines). It makes a network namespace of its own
# with one TAP in it (single queue: the guest has one vCPU) whose host end is 169.254.100.1/24,
# and deletes both when it ends, also on failure. Round after round it boots the same kernel
# and initrd (the bench initramfs: the stock test guest plus iperf3 and sockperf) once per
# system, in the same order every round (A B C A B C ...), with 1 vCPU, 512 MiB and one
# virtio-net NIC on that TAP (guest eth0 169.254.100.2/24, MAC 02:4b:45:45:4c:01). Before each
# boot it starts fresh servers in the namespace, `iperf3 -s` and `sockperf server --tcp`,
# bound to the host end, and stops them after. The guest runs scripts/lib/bench-net-guest.sh.
#
# Systems (each run with `ip netns exec NS`):
#   keel-pci      keel run --transport pci  --net tap=TAP,mac=MAC
#   keel-mmio     keel run --transport mmio --net tap=TAP,mac=MAC
#   qemu-microvm  qemu-system-x86_64 -M microvm (as scripts/bench-disk runs it), -netdev tap
#                 on the same TAP with vhost=off, -device virtio-net-device (virtio-mmio)
#
# Writes into DIR: results.tsv (system round metric value), runs.tsv (system round status
# seconds), one console log per boot (<system>-<round>.log) and the servers' logs
# (<system>-<round>.iperf3.log, .sockperf.log), meta.txt. Exit status 0 when every boot gave
# all five numbers, 1 otherwise (the results that came are kept).
set -euo pipefail
self=$(readlink -f -- "${BASH_SOURCE[0]}")
here=$(dirname -- "$self")
# shellcheck source=scripts/lib/common.sh
source "$here/common.sh"
# shellcheck source=scripts/lib/bench-common.sh
source "$here/bench-common.sh"
# ip and ss live in /usr/sbin, which a normal user's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$self" >&2; exit 2; }

out='' kernel='' initrd='' keel='' systems='keel-pci keel-mmio qemu-microvm' runs=3 seconds=10
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
        *) usage ;;
    esac
    shift 2
done
[[ -n $out && -f $kernel && -f $initrd ]] || usage
[[ $runs =~ ^[1-9][0-9]*$ && $seconds =~ ^[1-9][0-9]*$ ]] || keel_die "--runs and --seconds take positive integers"
for system in $systems; do
    case $system in
        keel-pci|keel-mmio) [[ -x $keel ]] || keel_die "$system needs --keel BIN" ;;
        qemu-microvm) command -v qemu-system-x86_64 >/dev/null || keel_die "no qemu-system-x86_64" ;;
        *) keel_die "unknown system '$system'" ;;
    esac
done
[[ -c /dev/kvm && -r /dev/kvm && -w /dev/kvm ]] || keel_die "no usable /dev/kvm here: run this through scripts/kvm-sandbox"
(($(id -u) == 0)) || keel_die "the network namespace and its TAP need root"
for tool in ip ss iperf3 sockperf; do
    command -v "$tool" >/dev/null || keel_die "no $tool here (scripts/bench-net installs it)"
done
mkdir -p "$out"

readonly HOST_IP=169.254.100.1 GUEST_IP=169.254.100.2 PREFIX=24 MAC=02:4b:45:45:4c:01
# 5201 is iperf3's default port, which the guest's iperf3 assumes.
readonly TAP=kbench0 IPERF3_PORT=5201 SOCKPERF_PORT=11111
ns=keel-bench-net-$$

bench_guest_cmdline "H=$HOST_IP S=$seconds P=$SOCKPERF_PORT" "$here/bench-net-guest.sh" \
    "keel.net=eth0=$GUEST_IP/$PREFIX"

# ---------------------------------------------------------------------------------------------
# The namespace, its TAP and the servers

ns_made=0
server_pids=()
stop_servers() {
    ((${#server_pids[@]})) || return 0
    kill "${server_pids[@]}" 2>/dev/null || true
    wait "${server_pids[@]}" 2>/dev/null || true
    server_pids=()
    # A guest that was killed mid-test leaves the servers' connections to it in FIN-WAIT,
    # retransmitting to nobody, and sockperf cannot bind its port again until they time
    # out: destroy them (ss -K; the kernel's INET_DIAG_DESTROY), or wait for them to go.
    ip netns exec "$ns" ss -K -t state all "( sport = :$IPERF3_PORT or sport = :$SOCKPERF_PORT )" \
        >/dev/null 2>&1 || true
    local tries=0
    while ip netns exec "$ns" ss -H -t state all "( sport = :$SOCKPERF_PORT )" 2>/dev/null | grep -q .; do
        ((++tries <= 120)) || break
        sleep 1
    done
}
# shellcheck disable=SC2317 # called from traps
cleanup() {
    set +e
    stop_servers
    if ((ns_made)); then
        # Whatever is still in the namespace was started here (a VMM timeout(1) failed to end,
        # say): it would keep the namespace alive after `ip netns del`.
        local pid
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip -n "$ns" link del "$TAP" 2>/dev/null
        ip netns del "$ns" || keel_log "could not delete network namespace $ns"
    fi
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$ns"
ns_made=1
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev "$TAP" mode tap
ip -n "$ns" addr add "$HOST_IP/$PREFIX" dev "$TAP"
ip -n "$ns" link set "$TAP" up

iperf3_server=(iperf3 -s -B "$HOST_IP" -p "$IPERF3_PORT")
sockperf_server=(sockperf server --tcp -i "$HOST_IP" -p "$SOCKPERF_PORT" --no-rdtsc)

listening() { # port
    ss -N "$ns" -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# Fresh servers for every boot: one a guest left mid-test cannot spoil the next boot's.
start_servers() { # log-prefix
    ip netns exec "$ns" "${iperf3_server[@]}" </dev/null >"$1.iperf3.log" 2>&1 &
    server_pids+=($!)
    ip netns exec "$ns" "${sockperf_server[@]}" </dev/null >"$1.sockperf.log" 2>&1 &
    server_pids+=($!)
    local tries=0
    until listening "$IPERF3_PORT" && listening "$SOCKPERF_PORT"; do
        ((++tries <= 300)) || { keel_log "the servers did not listen within 30 s; see $1.*.log"; return 1; }
        sleep 0.1
    done
}

# The command line of one boot of a system, in the array `cmd`.
command_for() { # system
    case $1 in
        keel-pci|keel-mmio)
            bench_vmm_command "$1" "$kernel" "$initrd" "$cmdline" --net "tap=$TAP,mac=$MAC" ;;
        qemu-microvm)
            # vhost=off: the data path in QEMU's own threads, as keel's is in keel.
            bench_vmm_command "$1" "$kernel" "$initrd" "$cmdline" \
                -netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no,vhost=off" \
                -device "virtio-net-device,netdev=n0,mac=$MAC" ;;
    esac
    cmd=(ip netns exec "$ns" "${cmd[@]}")
}

# What ran, for the record.
{
    bench_meta_header
    printf 'network: namespace %s, TAP %s (single queue), host end %s/%s; guest eth0 %s/%s, MAC %s\n' \
        "$ns" "$TAP" "$HOST_IP" "$PREFIX" "$GUEST_IP" "$PREFIX" "$MAC"
    printf 'guest: 1 vCPU, 512 MiB, kernel %s, initrd %s\n' "$kernel" "$initrd"
    printf 'tools: iperf3 %s, sockperf %s (Debian packages; the same binaries in the guest and on the host)\n' \
        "$(dpkg-query -W -f='${Version}' iperf3 2>/dev/null || echo '?')" \
        "$(dpkg-query -W -f='${Version}' sockperf 2>/dev/null || echo '?')"
    printf 'host servers: %s; %s\n' "${iperf3_server[*]}" "${sockperf_server[*]}"
    printf 'guest tests, %s s each: iperf3 -c %s -t %s -J; the same with -R; sockperf ping-pong --tcp -i %s -p %s -t %s --mps=max --full-rtt --no-rdtsc\n' \
        "$seconds" "$HOST_IP" "$seconds" "$HOST_IP" "$SOCKPERF_PORT" "$seconds"
    [[ -x $keel ]] && printf 'keel: %s (%s)\n' "$keel" "$("$keel" --version 2>&1 | head -n1)"
    printf 'qemu: %s\n' "$(qemu-system-x86_64 --version | head -n1)"
    for system in $systems; do
        command_for "$system"
        printf 'command %s: %s\n' "$system" "$(bench_command_line)"
    done
} >"$out/meta.txt"

# ---------------------------------------------------------------------------------------------
# The rounds

# Bound for one boot: the guest's boot under emulation plus three tests, generously.
boot_timeout=${KEEL_BENCH_BOOT_TIMEOUT:-$((600 + 8 * seconds))}
printf 'system\tround\tmetric\tvalue\n' >"$out/results.tsv"
printf 'system\tround\tstatus\tseconds\n' >"$out/runs.tsv"
failures=0
for ((round = 1; round <= runs; round++)); do
    for system in $systems; do
        log=$out/$system-$round.log
        count=0
        if start_servers "${log%.log}"; then
            command_for "$system"
            bench_boot "$log" "$boot_timeout"
            status=$boot_status took=$boot_seconds
            # The console may end lines with \r. The guest reports bit/s and µs; the table
            # takes Gbit/s.
            results=$(tr -d '\r' <"$log" | awk -F'[=,]' '
                /^KEEL-TEST net-guest_to_host=[0-9.e+]+$/ { printf "guest_to_host_gbit_s\t%.6f\n", $2 / 1e9 }
                /^KEEL-TEST net-host_to_guest=[0-9.e+]+$/ { printf "host_to_guest_gbit_s\t%.6f\n", $2 / 1e9 }
                /^KEEL-TEST net-rr=[0-9.]+,[0-9.]+,[0-9]+$/ {
                    printf "rr_median_us\t%s\nrr_p99_us\t%s\nround_trips_per_s\t%s\n", $2, $3, $4 }
                # Interrupts per 1000 packets (received + sent) of each test, from the
                # guest counters before and after it.
                /^KEEL-TEST net-irq-[a-z_]+=[0-9]+,[0-9]+,[0-9]+$/ {
                    test = $1; sub(/^KEEL-TEST net-irq-/, "", test)
                    if (test != "start" && have && $3 + $4 > r + x)
                        printf "%s_irqs_per_kpkt\t%.1f\n", test, 1000 * ($2 - i) / ($3 + $4 - r - x)
                    i = $2; r = $3; x = $4; have = 1 }')
            while IFS=$'\t' read -r metric value; do
                [[ -n $metric ]] || continue
                printf '%s\t%s\t%s\t%s\n' "$system" "$round" "$metric" "$value" >>"$out/results.tsv"
                [[ $metric == *_irqs_per_kpkt ]] || count=$((count + 1))
            done <<<"$results"
        else
            status=no-servers took=0
        fi
        stop_servers
        if ((count != 5)); then
            failures=$((failures + 1))
            keel_log "$system round $round: exit $status, $count of 5 results; log: $log"
            [[ -f $log ]] && { tr -d '\r' <"$log" | grep -a -E 'KEEL-TEST net-error|keel.net|error|panic' | head -n 5 >&2 || true; }
            [[ $status == 0 ]] && status=incomplete
        fi
        printf '%s\t%s\t%s\t%s\n' "$system" "$round" "$status" "$took" >>"$out/runs.tsv"
        keel_log "round $round/$runs $system: $count results, exit $status, ${took} s"
    done
done
((failures == 0))
