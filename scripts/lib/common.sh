# Shared helpers for keel's shell scripts. Source it; it defines functions only.

# Where downloaded packages, built guests and the sandbox's L1 live. Outside the
# work tree so that clean clones (CI) reuse what an earlier run already built.
keel_cache_dir() {
    local dir="${KEEL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keel}"
    mkdir -p "$dir"
    printf '%s\n' "$dir"
}

keel_log() { printf '[keel] %s\n' "$*" >&2; }
keel_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# apt-get update at most once per hour: apt-cache look-ups need fresh lists, but
# a repeated setup must stay fast.
keel_apt_update_if_stale() {
    local stamp=/var/lib/apt/periodic/keel-update-stamp
    if [[ ! -f $stamp ]] || [[ -n $(find "$stamp" -mmin +60 2>/dev/null) ]] ||
       [[ -z $(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial) ]]; then
        keel_as_root apt-get update -qq -o DPkg::Lock::Timeout=600 >&2 || keel_die "apt-get update failed"
        keel_as_root mkdir -p "$(dirname "$stamp")"
        keel_as_root touch "$stamp"
    fi
}

keel_as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages given that are not installed yet; silent when all are.
keel_apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    keel_log "installing: ${missing[*]}"
    keel_apt_update_if_stale
    keel_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=600 \
        "${missing[@]}" >&2 || keel_die "apt-get install ${missing[*]} failed"
}
