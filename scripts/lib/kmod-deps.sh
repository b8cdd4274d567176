# shellcheck shell=bash
# Kernel-module dependency resolution for initramfs builders. Source it; it
# defines functions only (and needs `modinfo` from kmod).
#
#   kmod_deps_load_order MODULES_DIR NAME...
#
# prints the module files (absolute paths, .ko or compressed .ko.xz/.zst/.gz)
# that loading NAME... needs, one per line, in an order in which `insmod` can
# load them: every module after all of its dependencies. Dependencies come from
# the modules themselves (`modinfo -F depends`, plus `softdep pre:` modules that
# exist), not from modules.dep: Debian's linux-image packages ship no
# modules.dep (depmod runs at install time), and a hard-coded order breaks when
# a kernel update adds an edge (6.1.0-56's virtio.ko newly needs virtio_ring.ko).
#
# MODULES_DIR is a lib/modules/<version> directory. Names may use '-' or '_'
# (virtio-rng and virtio_rng are the same module, as for modprobe). A name
# that is not found, or a dependency cycle, is an error (return 1, message on
# stderr): an initramfs silently missing a driver fails much later and far away.

kmod_deps_load_order() {
    local moddir=${1:?usage: kmod_deps_load_order MODULES_DIR NAME...}
    shift
    [[ -d $moddir ]] || { printf 'kmod-deps: no such directory: %s\n' "$moddir" >&2; return 1; }

    # Index every module file by its normalised name. Sorted, so that if two
    # files share a name the choice is the same on every run.
    local -A _kmod_path=() _kmod_state=()
    local -a _kmod_order=()
    local file name
    while IFS= read -r file; do
        # Plain expansions, no subshell: a distribution kernel has ~4000 modules.
        name=${file##*/}
        name=${name%%.ko*}
        name=${name//-/_}
        [[ -n ${_kmod_path[$name]:-} ]] || _kmod_path[$name]=$file
    done < <(find "$moddir" -type f \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' \
                 -o -name '*.ko.gz' \) | LC_ALL=C sort)

    for name in "$@"; do
        _kmod_visit "$(_kmod_normalise "$name")" "$name" || return 1
    done
    ((${#_kmod_order[@]} == 0)) || printf '%s\n' "${_kmod_order[@]}"
}

_kmod_normalise() { printf '%s\n' "${1//-/_}"; }

# Depth-first, post-order: a module is appended after all its dependencies.
# Uses the caller's _kmod_path/_kmod_state/_kmod_order (bash dynamic scope).
# state: 1 = on the current path (seeing it again is a cycle), 2 = done.
_kmod_visit() {
    local name=$1 wanted_by=$2 file dep deps
    case ${_kmod_state[$name]:-0} in
        2) return 0 ;;
        1) printf 'kmod-deps: dependency cycle through %s\n' "$name" >&2; return 1 ;;
    esac
    file=${_kmod_path[$name]:-}
    if [[ -z $file ]]; then
        printf 'kmod-deps: module %s (needed by %s) not found\n' "$name" "$wanted_by" >&2
        return 1
    fi
    _kmod_state[$name]=1
    deps=$(_kmod_hard_deps "$file") || return 1
    for dep in $deps; do
        _kmod_visit "$dep" "$name" || return 1
    done
    # Soft pre-dependencies are optional by definition: take them when present
    # (libcrc32c wants the crc32c module, which is built in on some kernels).
    for dep in $(_kmod_soft_pre_deps "$file"); do
        [[ -n ${_kmod_path[$dep]:-} ]] || continue
        _kmod_visit "$dep" "$name" || return 1
    done
    _kmod_state[$name]=2
    _kmod_order+=("$file")
}

# `modinfo -F depends` prints one comma-separated line ("" when none).
_kmod_hard_deps() {
    local deps
    deps=$(modinfo -F depends "$1") || {
        printf 'kmod-deps: modinfo failed on %s\n' "$1" >&2
        return 1
    }
    deps=${deps//,/ }
    local dep
    for dep in $deps; do _kmod_normalise "$dep"; done
}

# softdep lines look like "pre: crc32c post: foo"; keep the words after "pre:".
_kmod_soft_pre_deps() {
    modinfo -F softdep "$1" 2>/dev/null | awk '{
        pre = 0
        for (i = 1; i <= NF; i++) {
            if ($i == "pre:") { pre = 1; continue }
            if ($i ~ /:$/) { pre = 0; continue }
            if (pre) { gsub(/-/, "_", $i); print $i }
        }
    }'
}
