#!/bin/sh
# The payload of `keel bench compare` (guest-images/README.md has the contract):
# the same program runs as a VM's init (rdinit=/bench/payload.sh) and as a
# container's process. It says it runs, waits for the bench's go-ahead line
# (the bench samples the running system in between), and ends: a VM by
# powering the machine off (init cannot simply exit: the kernel would panic),
# a container (the bench sets KEEL_BENCH_CONTAINER=1 there) by exiting.
echo "KEEL-BENCH payload-ready"
read -r _ || true
echo "KEEL-BENCH payload-done"
if [ -z "${KEEL_BENCH_CONTAINER:-}" ]; then
    exec poweroff -f
fi
exit 0
