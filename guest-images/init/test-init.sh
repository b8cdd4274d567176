#!/bin/sh
# keel test guest: /init of the initramfs that guest-images/build-stock-guest
# builds (busybox ash, PID 1). It marks the boot timer, reports what the guest
# sees as `KEEL-TEST key=value` lines on the console, optionally runs a test
# script, then does what `keel.action=` asks. guest-images/README.md lists the
# keys: it is the contract integration tests assert against.
#
# No `set -e`: this is PID 1, and PID 1 exiting panics the kernel. Every step
# that can fail is allowed to, and the facts report what was (not) found.

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH

# The boot-timer address of keel's Firecracker-compatible device and the Cloud
# Hypervisor debug-port codes we write (0x60-0x7f is CH's "userspace" range).
BOOT_TIMER_MMIO=0xc0000000
BOOT_TIMER_VALUE=123
DEBUG_PORT=0x80
CODE_INIT_STARTED=0x60
CODE_BOOT_OK=0x61

# --- 1. /dev first: the boot-timer marks need /dev/mem and /dev/port, and
#        they should be as close to "userspace started" as we can make them.
mount -t devtmpfs devtmpfs /dev 2>/dev/null  # fails harmlessly if automounted

# Writes a code to the debug port: via /dev/port where the kernel has it (the
# minimal kernel), else with ioperm+outb (Debian's kernels lack /dev/port).
debug_port_mark() {
    if [ -c /dev/port ]; then
        # dd seeks to the port number and writes one byte there (an outb).
        # shellcheck disable=SC2059 # the format is the octal escape of the byte
        printf "\\$(printf '%03o' "$1")" |
            dd of=/dev/port bs=1 seek=$((DEBUG_PORT)) count=1 conv=notrunc 2>/dev/null
    else
        keel-outb "$DEBUG_PORT" "$1" 2>/dev/null
    fi
}

# Firecracker's boot timer: byte 123 at MMIO 0xc0000000. Under keel that
# address is the device; elsewhere (QEMU) nothing claims it and the write is
# dropped. `timeout` keeps a misbehaving devmem from stalling the boot.
timeout 2 devmem "$BOOT_TIMER_MMIO" 8 "$BOOT_TIMER_VALUE" 2>/dev/null
debug_port_mark "$CODE_INIT_STARTED"

# The kernel found no /dev/console in the archive only if the build could not
# create the node; make sure our output reaches the console either way.
[ -t 1 ] || exec </dev/console >/dev/console 2>&1

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /tmp /run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run

# From here on only emergencies (panics, "reboot: Power down") reach the
# console: a kernel message printed while a marker line is being sent can land
# in the middle of it (the 8250 driver sends tty output 16 bytes per interrupt
# and printk writes in between). Everything is still in dmesg.
dmesg -n 1

log() { echo "keel-init: $*"; }

# Waits until everything written to the console has left the UART: stty with
# a setting applies it with TCSADRAIN. Without this, the last lines can be lost
# when the next step powers off or panics the machine.
drain_console() {
    stty -F /dev/console "$(stty -F /dev/console -g)" 2>/dev/null
}
fact() { echo "KEEL-TEST $1=$2"; }

# Ctrl-Alt-Del (keel's PUT /actions SendCtrlAltDel, pressed on the i8042
# keyboard) is init's to handle, as on any distribution: with ctrl-alt-del at 0
# the kernel sends PID 1 SIGINT instead of rebooting on the spot. This init
# reports it and powers off cleanly. The trap runs between commands, so every
# long wait below is `sleep & wait`, which a trapped signal interrupts.
on_ctrl_alt_del() {
    fact ctrl-alt-del received
    drain_console
    sync
    poweroff -f
}
echo 0 >/proc/sys/kernel/ctrl-alt-del 2>/dev/null
trap on_ctrl_alt_del INT

# Value of a keel.* parameter from /proc/cmdline (dotted parameters never
# reach init's environment: the kernel takes them for module options).
cmdline_param() {
    for word in $(cat /proc/cmdline); do
        case $word in "$1"=*) echo "${word#*=}"; return 0 ;; esac
    done
    return 1
}

# --- 2. modules: only when they were built for the running kernel. The minimal
#        kernel has the drivers built in and a different release; skip quietly.
load_modules() {
    dir=/lib/modules/$(uname -r)
    [ -f "$dir/load-order" ] || return 0
    while read -r mod; do
        # sysfs names modules with '_' (virtio-rng.ko is virtio_rng).
        name=$(echo "${mod%.ko}" | tr - _)
        # Already there (built in or loaded): nothing to do.
        [ -d "/sys/module/$name" ] && continue
        insmod "$dir/$mod" 2>/dev/null || log "insmod $mod failed"
    done <"$dir/load-order"
}
load_modules

# --- 3. network: keel.net=eth0=169.254.100.2/24,eth1=169.254.101.2/24 brings
#        each named interface up with that IPv4 address (the address may be
#        left out: NAME alone is only brought up). Drivers probe their devices
#        synchronously while loading, but give a late interface a few seconds.
wait_for_interface() {
    tries=0
    while [ ! -d "/sys/class/net/$1" ] && [ $tries -lt 50 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    [ -d "/sys/class/net/$1" ]
}
configure_nics() {
    ip link set lo up 2>/dev/null
    for entry in $(echo "$1" | tr ',' ' '); do
        name=${entry%%=*}
        address=
        [ "$name" = "$entry" ] || address=${entry#*=}
        if ! wait_for_interface "$name"; then
            log "keel.net: no interface $name"
            continue
        fi
        if [ -n "$address" ]; then
            ip addr add "$address" dev "$name" || log "keel.net: cannot give $name the address $address"
        fi
        ip link set "$name" up || log "keel.net: cannot bring $name up"
    done
}
if net_config=$(cmdline_param keel.net); then
    configure_nics "$net_config"
fi

# --- 4. facts, one per line
count_cpus() {
    # "0-3,6,8-9" -> 7
    online=$(cat /sys/devices/system/cpu/online 2>/dev/null) || { nproc; return; }
    n=0
    for range in $(echo "$online" | tr ',' ' '); do
        case $range in
            *-*) n=$((n + ${range#*-} - ${range%-*} + 1)) ;;
            *) n=$((n + 1)) ;;
        esac
    done
    echo "$n"
}

# Comma-separated entries of a directory, sorted; empty when none.
list_dir() {
    ls "$1" 2>/dev/null | tr '\n' ',' | sed 's/,$//'
}

# "virtio0:2,virtio1:1": each virtio device and its device ID in decimal
# (1 net, 2 block, 3 console, 4 entropy, ... - virtio spec 1.2 section 5).
virtio_devices() {
    out=
    for path in /sys/bus/virtio/devices/*; do
        id=$(cat "$path/device" 2>/dev/null) || continue
        out="$out,${path##*/}:$((id))"
    done
    echo "${out#,}"
}

# "vda:2048:0:SERIAL,vdb:...": each virtio disk with its size in 512-byte
# sectors, its read-only flag and its serial (GET_ID; empty when none).
virtio_disks() {
    out=
    for path in /sys/block/vd*; do
        [ -d "$path" ] || continue
        out="$out,${path##*/}:$(cat "$path/size"):$(cat "$path/ro"):$(cat "$path/serial" 2>/dev/null)"
    done
    echo "${out#,}"
}

# "eth0:02:00:00:00:00:01:1500:up:169.254.100.2/24,...": each network
# interface that has a device behind it (so not lo) with its MAC, MTU, state
# (up: administratively up with carrier; no-carrier; down) and its first IPv4
# address with prefix length (empty when none).
network_interfaces() {
    out=
    for path in /sys/class/net/*; do
        [ -e "$path/device" ] || continue
        name=${path##*/}
        if [ $(($(cat "$path/flags") & 1)) -eq 0 ]; then
            state=down
        elif [ "$(cat "$path/carrier" 2>/dev/null)" = 1 ]; then
            state=up
        else
            state=no-carrier
        fi
        address=$(ip -4 -o addr show dev "$name" 2>/dev/null | awk '{ print $4; exit }')
        out="$out,$name:$(cat "$path/address"):$(cat "$path/mtu"):$state:$address"
    done
    echo "${out#,}"
}

fact cpus "$(count_cpus)"
fact mem_total_kb "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
fact kernel "$(uname -r)"
if [ -d /sys/firmware/acpi/tables ]; then fact acpi yes; else fact acpi no; fi
fact devices "$(virtio_devices)"
fact blk "$(list_dir /sys/block)"
fact disks "$(virtio_disks)"
fact net "$(list_dir /sys/class/net)"
fact nics "$(network_interfaces)"
fact rng "$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
fact uptime "$(cut -d' ' -f1 /proc/uptime)"
debug_port_mark "$CODE_BOOT_OK"
echo "KEEL-TEST boot-ok"

# --- 5. keel.run=<base64 of a shell script>: the test's own checks
if script=$(cmdline_param keel.run); then
    if echo "$script" | base64 -d >/tmp/keel-run.sh 2>/dev/null && [ -s /tmp/keel-run.sh ]; then
        sh /tmp/keel-run.sh </dev/null
        status=$?
    else
        log "keel.run is not base64 of a script"
        status=127
    fi
    fact run-exit "$status"
fi

# --- 6. keel.action=poweroff|reboot|shell|panic (default poweroff)
action=$(cmdline_param keel.action) || action=poweroff
case $action in
    poweroff|reboot|shell|panic|tick) ;;
    *) log "unknown keel.action '$action', powering off"; action=poweroff ;;
esac
fact action "$action"
drain_console

case $action in
    shell)
        # setsid + cttyhack give the shell the console as controlling tty, so
        # job control and Ctrl-C work.
        setsid cttyhack sh -l
        poweroff -f ;;
    reboot) reboot -f ;;
    panic) echo c >/proc/sysrq-trigger ;;
    poweroff) poweroff -f ;;
    tick)
        # A clock the host can watch: one line per second of guest time,
        # until Ctrl-Alt-Del or the host stops the VM.
        tick=0
        while :; do
            tick=$((tick + 1))
            fact tick "$tick"
            sleep 1 &
            wait $!
        done ;;
esac

# Still here: the platform ignored the request (e.g. no ACPI power-off).
log "$action did not stop the machine; halting"
drain_console
while :; do sleep 3600 & wait $!; done
