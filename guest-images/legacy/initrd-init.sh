#!/bin/sh
# /init of the legacy image's initramfs (guest-images/build-legacy-image).
# Debian's stock kernel has its virtio drivers as modules, so something must
# load them before the root file system on /dev/vda can be mounted: this
# loads the modules listed in load-order, mounts root= (rw or ro as the
# command line says, rootfstype= and rootflags= honoured) and hands over to
# the image's init (init=, default /sbin/init) with switch_root.
export PATH=/bin

mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Kernel messages in the middle of our lines would garble them.
dmesg -n 1

say() { echo "keel-initrd: $*"; }
give_up() {
    say "$*"
    say "cannot boot the root file system; powering off"
    poweroff -f
    sleep 10
    exit 1
}

root='' fstype=ext4 flags='' mode=ro init=/sbin/init
for arg in $(cat /proc/cmdline); do
    case $arg in
        root=*) root=${arg#root=} ;;
        rootfstype=*) fstype=${arg#rootfstype=} ;;
        rootflags=*) flags=${arg#rootflags=} ;;
        rw) mode=rw ;;
        ro) mode=ro ;;
        init=*) init=${arg#init=} ;;
    esac
done
[ -n "$root" ] || give_up "no root= on the kernel command line"

modules=/lib/modules/$(uname -r)
if [ -f "$modules/load-order" ]; then
    while read -r module; do
        # sysfs names modules with '_' (virtio-rng.ko is virtio_rng); skip
        # what is already there.
        name=$(echo "${module%.ko}" | tr - _)
        [ -d "/sys/module/$name" ] && continue
        insmod "$modules/$module" || say "insmod $module failed"
    done <"$modules/load-order"
fi

# Drivers probe asynchronously: wait up to 10 s for the device.
i=0
while [ ! -b "$root" ]; do
    [ $i -ge 100 ] && give_up "$root did not appear within 10 s (block devices: $(ls /sys/block | tr '\n' ' '))"
    sleep 0.1
    i=$((i + 1))
done

mkdir -p /newroot
mount -t "$fstype" -o "$mode${flags:+,$flags}" "$root" /newroot || give_up "cannot mount $root ($fstype, $mode)"
[ -x "/newroot$init" ] || [ -L "/newroot$init" ] || give_up "no $init on $root"

# The image's init finds /dev, /proc and /sys already mounted, as after
# Debian's own initramfs.
for fs in dev proc sys; do
    mount --move /$fs /newroot/$fs || give_up "cannot move /$fs into the root file system"
done
exec switch_root /newroot "$init" "$@"
