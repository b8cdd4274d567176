# shellcheck shell=sh disable=SC2154 # H, S and P are prepended by bench-net-run.sh
# Guest side of scripts/bench-net: iperf3 and sockperf against the host's servers at $H.
# scripts/lib/bench-net-run.sh prepends `H=<host address> S=<seconds> P=<sockperf port>`, drops
# the comment lines and passes the rest base64'd as keel.run= (guest-images/init/test-init.sh
# runs it once keel.net= has brought eth0 up): the kernel command line holds at most 2048
# bytes, so keep this short. iperf3 and sockperf come from the bench initramfs.
# Output, in this order:
#   KEEL-TEST net-guest_to_host=<bit/s>   iperf3 -c H -t S: the receiver's (host's) figure,
#                                         end.sum_received.bits_per_second of -J
#   KEEL-TEST net-host_to_guest=<bit/s>   the same with -R: the host sends, the guest receives
#   KEEL-TEST net-rr=<median µs>,<p99 µs>,<round trips/s>
#                                         sockperf ping-pong over TCP for S s: full round trips
#                                         (--full-rtt), the clock_gettime clock (--no-rdtsc)
#   KEEL-TEST net-irq-<test>=<I>,<R>,<T>  before the first test (<test> "start") and after
#                                         each: the guest's virtio interrupts (/proc/interrupts,
#                                         1 vCPU) and eth0's received and sent packets so far
#   KEEL-TEST net-error=<what>            when something is missing or a tool fails; a tool
#                                         that hangs is killed after 2 S + 30 s, and the guest's
#                                         interrupts, TCP counters and busiest tasks follow
t() { echo "KEEL-TEST net-$1=$2"; }
w() { timeout $((S * 2 + 30)) "$@"; }
d() { t error "$1"; grep -E 'virtio|LOC|CAL' /proc/interrupts; grep Tcp: /proc/net/snmp; head -1 /proc/stat; top -bn1 | head -12; dmesg | tail -15; exit 1; }
c() { t irq-$1 $(awk '/virtio/{i+=$2}END{printf i}' /proc/interrupts),$(cat /sys/class/net/eth0/statistics/rx_packets),$(cat /sys/class/net/eth0/statistics/tx_packets); }
# Reachable (and the ARP entries made on both ends) before anything is timed.
ping -c 3 -W 10 "$H" >/dev/null || { t error no-ping; exit 1; }
c start
for d in guest_to_host host_to_guest; do
  R=; [ $d = host_to_guest ] && R=-R
  w iperf3 -c "$H" -t "$S" -J $R >/tmp/j 2>&1
  # -J pretty-prints: `"bits_per_second":<tab>123.4,` on a line of its own.
  v=$(awk '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { sub(/.*:[[:space:]]*/, ""); sub(/[,}].*/, ""); print; exit }' /tmp/j)
  [ -n "$v" ] || d "iperf3 $d: $(grep -m1 error /tmp/j | head -c 150)"
  t $d "$v"
  c $d
done
w sockperf ping-pong --tcp -i "$H" -p "$P" -t "$S" --mps=max --full-rtt --no-rdtsc >/tmp/r 2>&1
p() { sed -n "s/.*percentile $1 = *//p" /tmp/r; }
# "[Valid Duration] RunTime=9.550 sec; SentMessages=229630; ReceivedMessages=229630"
n=$(sed -n 's/.*Valid Duration.*RunTime=\([0-9.]*\).*ReceivedMessages=\([0-9]*\).*/\2 \1/p' /tmp/r |
  awk '$2 > 0 { printf "%.0f", $1 / $2 }')
if [ -z "$(p 50.000)" ] || [ -z "$n" ]; then d "sockperf: $(grep -m1 -i error /tmp/r | head -c 150)"; fi
t rr "$(p 50.000),$(p 99.000),$n"
c rr
