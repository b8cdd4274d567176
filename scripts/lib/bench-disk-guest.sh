# shellcheck shell=sh disable=SC2154 # S and E are prepended by bench-disk-run.sh
# Guest side of scripts/bench-disk: runs fio on /dev/vda inside the test guest.
# scripts/lib/bench-disk-run.sh prepends `S=<seconds> E=<ioengine>`, drops the comment
# lines and passes the rest base64'd as keel.run= (guest-images/init/test-init.sh runs it):
# the kernel command line holds at most 2048 bytes, so keep this short.
# fio comes from the bench initramfs (the stock initrd plus fio and its libraries).
# Output, one line per job, in the order run (each job waits for the one before: stonewall):
#   KEEL-TEST fio-engine=<ioengine used>
#   KEEL-TEST fio-<job>=<IOPS>,<KiB/s>        job: seq-read seq-write rand-read rand-write
#   KEEL-TEST fio-error=<what>                when something is missing or fio fails
[ -b /dev/vda ] || { echo "KEEL-TEST fio-error=no-vda"; exit 1; }
# The engine asked for, if this kernel and fio can run it; else psync.
fio --name=p --filename=/dev/vda --ioengine="$E" --direct=1 --bs=4k --size=4k >/dev/null 2>&1 || E=psync
echo "KEEL-TEST fio-engine=$E"
# Terse v3: field 3 the job name, 7/8 read KiB/s and IOPS, 48/49 the same for writes.
fio --minimal --filename=/dev/vda --direct=1 --ioengine="$E" --iodepth=1 --time_based \
  --runtime="$S" --stonewall --name=seq-read --rw=read --bs=1M --name=seq-write --rw=write \
  --bs=1M --name=rand-read --rw=randread --bs=4k --name=rand-write --rw=randwrite --bs=4k \
  >/tmp/fio.out 2>/tmp/fio.err || { echo "KEEL-TEST fio-error=$(head -c 200 /tmp/fio.err)"; exit 1; }
awk -F';' '{ w = $3 ~ /write/ ? 41 : 0; print "KEEL-TEST fio-" $3 "=" $(8 + w) "," $(7 + w) }' /tmp/fio.out
