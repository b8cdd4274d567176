#!/bin/sh
# /init of the KVM sandbox's L1 (see scripts/kvm-sandbox and docs/testing.md).
#
# Runs as PID 1 under busybox sh from the initramfs that scripts/kvm-sandbox builds. It
# loads the modules listed in /modules/order (already sorted by their dependencies), mounts
# the host's root (9p tag "hostroot") at /host with fresh /proc /sys /dev /run /tmp on top,
# and runs the job script ($job/job.sh, a host path given as keel.job=$job) in a chroot of it
# with:
#   stdin  /dev/null
#   stdout the virtio-serial port "keel.stdout"   (a file on the host, streamed by the wrapper)
#   stderr the virtio-serial port "keel.stderr"
# It reports "keel-started <uptime>" and "keel-exit <status>" on the port "keel.status".
# The console (ttyS0) is only for diagnostics: the wrapper saves it to a log.
# Options come from the kernel command line: keel.job=<host dir>, keel.tmp=overlay|fresh|host,
# keel.cache=<9p cache mode>, keel.msize=<bytes>, keel.debug=1.
#
# PID 1 must never exit (that panics the kernel), so every path ends in reboot -f; QEMU runs
# with -no-reboot and exits then.

export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

say() { echo "keel-init: $*"; }
# keel.debug=1: timestamps of the boot steps on the console (the L1's own clock).
mark() { [ -z "$debug" ] || say "uptime $(cut -d' ' -f1 /proc/uptime): $*"; }
finish() {
    sync
    reboot -f
    sleep 5   # reboot -f does not return; never let PID 1 exit meanwhile
}
fail() {
    say "FATAL: $*"
    finish
}

job='' tmp_mode=overlay cache=loose msize=512000 debug=''
for arg in $(cat /proc/cmdline); do
    case $arg in
        keel.job=*) job=${arg#*=} ;;
        keel.tmp=*) tmp_mode=${arg#*=} ;;
        keel.cache=*) cache=${arg#*=} ;;
        keel.msize=*) msize=${arg#*=} ;;
        keel.debug=*) debug=${arg#*=} ;;
    esac
done
mark "loading modules"

# A module that fails to load (kvm-amd without SVM, say) is reported, not fatal: the job then
# finds no /dev/kvm and says so itself, and --self-test reports it.
while read -r mod; do
    insmod "/modules/$mod" || say "insmod $mod failed"
    mark "loaded $mod"
done </modules/order
# devtmpfs creates /dev/kvm as 0600 root; a udev rule would make it 0660 group kvm. The L1 is
# single-user, so let any uid use it (the job may run as the caller's non-root uid).
[ -e /dev/kvm ] && chmod 0666 /dev/kvm

# The virtio-serial ports get their names from the host asynchronously (control messages
# processed in a workqueue), so wait for them.
port_dev() {
    for d in /sys/class/virtio-ports/*; do
        [ "$(cat "$d/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${d##*/}"; return 0; }
    done
    return 1
}
i=0
while ! { out=$(port_dev keel.stdout) && err=$(port_dev keel.stderr) &&
          status=$(port_dev keel.status) && [ -c "$out" ] && [ -c "$err" ] && [ -c "$status" ]; }; do
    i=$((i + 1))
    [ $i -gt 1000 ] && fail "virtio-serial ports keel.stdout/stderr/status did not appear"
    sleep 0.01
done
exec 3>"$status"
mark "ports ready"

hostname keel-sandbox
# No proactive compaction either (see transparent_hugepage=never in scripts/kvm-sandbox).
echo 0 >/proc/sys/vm/compaction_proactiveness 2>/dev/null || true
ip link set lo up

mkdir -p /host
# The host's files keep their owners and modes; access=user (the default) makes the L1 check
# permissions per uid like a local filesystem would.
mount -t 9p -o "trans=virtio,version=9p2000.L,msize=$msize,cache=$cache" hostroot /host ||
    fail "cannot mount the host's root over 9p"
# Take the job before /tmp (where it usually is) disappears under the L1's own /tmp.
cp "/host$job/job.sh" /job.sh && bash=$(cat "/host$job/bash") ||
    fail "no job in $job on the host"

# Fresh kernel filesystems inside the chroot. The mount points are the host's own (they exist
# on any Linux root); nothing here writes to the host's filesystem.
mount -t proc proc /host/proc || fail "mount /host/proc"
mount -t sysfs sysfs /host/sys || fail "mount /host/sys"
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup 2>/dev/null || say "no cgroup2 mount"
# KVM counts every exit of every VM in debugfs; keel bench compare reads it for all VMMs alike.
mount -t debugfs debugfs /host/sys/kernel/debug 2>/dev/null || say "no debugfs"
mount -t devtmpfs devtmpfs /host/dev || fail "mount /host/dev"
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /host/dev/pts || say "no devpts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /host/dev/shm
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /host/run || fail "mount /host/run"
case $tmp_mode in
    overlay)
        # The host's /tmp shows through (read) while everything written goes to a tmpfs
        # that vanishes with the L1: fast, and unix sockets work (they do not on 9p).
        mkdir -p /ovl && mount -t tmpfs tmpfs /ovl && mkdir -p /ovl/upper /ovl/work &&
            chmod 1777 /ovl/upper &&
            mount -t overlay -o lowerdir=/host/tmp,upperdir=/ovl/upper,workdir=/ovl/work \
                overlay /host/tmp ||
            { say "overlay on /tmp failed: using a fresh tmpfs"; tmp_mode=fresh; }
        ;;
    host) ;;   # the host's /tmp itself, over 9p (writes reach the host)
    fresh) ;;
    *) say "unknown keel.tmp=$tmp_mode: using a fresh tmpfs"; tmp_mode=fresh ;;
esac
[ "$tmp_mode" = fresh ] && mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /host/tmp

mark "filesystems mounted"

mkdir -p /host/run/keel
cp /job.sh /host/run/keel/job.sh

# One idle VM (with an in-kernel irqchip and one vCPU that never runs) lives as long as the
# job. Without it every test boot flips static keys in the L1 kernel: KVM's
# preempt_notifier_key (a static branch in the scheduler's finish_task_switch) goes 0->1 when
# the first VM is created and back when the last one goes, apic_sw_disabled likewise with the
# first vCPU. Each flip live-patches kernel text on all L1 vCPUs (int3 + IPIs), and under
# QEMU's multi-threaded TCG that patching has wedged the L1 with every vCPU looping on the int3
# in finish_task_switch. With the counts held at >= 1 the keys never flip. perl (essential in
# Debian) makes the three ioctls: KVM_CREATE_VM, KVM_CREATE_IRQCHIP, KVM_CREATE_VCPU.
kvm_holder=
if [ -e /dev/kvm ]; then
    /bin/chroot /host /usr/bin/perl -e '
        open(my $kvm, "+<", "/dev/kvm") or exit 1;
        my $vm = ioctl($kvm, 0xAE01, 0) or exit 1;
        open(my $vmfh, "+<&=", $vm) or exit 1;
        ioctl($vmfh, 0xAE60, 0) or exit 1;
        ioctl($vmfh, 0xAE41, 0) or exit 1;
        sleep;' </dev/null >/dev/null 2>&1 &
    kvm_holder=$!
fi

mark "starting the job"
echo "keel-started $(cut -d' ' -f1 /proc/uptime)" >&3
# The heartbeat: the host cannot tell a quiet job from an L1 whose emulated CPUs wedged (seen
# under nested SVM in TCG: no console output, no timers, for ever), so the L1 says it is alive
# every 15 s and the host gives up on it after KEEL_SANDBOX_STALL_TIMEOUT s of silence.
( while sleep 15; do echo "keel-alive $(cut -d' ' -f1 /proc/uptime)" >&3; done ) &
heartbeat=$!
# busybox's env -i, not the host's: every host binary started here is read over 9p first.
env -i /bin/chroot /host "$bash" --noprofile --norc /run/keel/job.sh \
    </dev/null >"$out" 2>"$err"
job_status=$?
kill "$heartbeat" $kvm_holder 2>/dev/null
echo "keel-exit $job_status" >&3
exec 3>&-
finish
