# kvm_runs_guests: true when this host's /dev/kvm runs guest code at hardware speed
# (scripts/lib/kvm-probe.c), not only when it opens; else false with the reason in
# $kvm_probe_verdict. Sourced by scripts/kvm-sandbox, scripts/demo and the benchmarks.
# A /dev/kvm that opens but cannot run guests would make every boot run out of time.
keel_kvm_probe_source=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/kvm-probe.c
kvm_probe_verdict=
kvm_runs_guests() {
    [[ -c /dev/kvm && -r /dev/kvm && -w /dev/kvm ]] || { kvm_probe_verdict="no /dev/kvm on this host"; return 1; }
    # Inside the sandbox its own L1 KVM is the one there is; emulated, and busy, it is slow.
    [[ ${KEEL_IN_SANDBOX:-} == 1 ]] && return 0
    local source=$keel_kvm_probe_source dir probe
    dir=$(keel_cache_dir)/kvm-probe
    probe=$dir/kvm-probe-$(sha256sum "$source" | cut -c1-16)
    if [[ ! -x $probe ]]; then
        mkdir -p "$dir"
        gcc -O2 -o "$probe.tmp" "$source" 2>/dev/null && mv "$probe.tmp" "$probe" ||
            { kvm_probe_verdict="/dev/kvm is here but kvm-probe did not build (gcc)"; return 1; }
    fi
    local said
    if said=$("$probe" 5 2>&1); then return 0; fi
    kvm_probe_verdict="/dev/kvm is here but does not run guest code at hardware speed (${said//$'\n'/ })"
    return 1
}
