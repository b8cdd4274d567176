#pragma once

#include <nlohmann/json.hpp>
#include <string>

// The container side of `keel bench compare`: the VM's initrd, unpacked, as
// the root file system of an OCI bundle that crun or runc starts.
namespace keel::bench {

// Pure: the bundle's config.json. The defaults `crun spec` / `runc spec`
// give (namespaces, capabilities, mounts, masked paths), so the container is
// the one a user gets without tuning, with the payload as its process and a
// read-only root. KEEL_BENCH_CONTAINER=1 in its environment tells the payload
// it is not PID 1 of a machine.
[[nodiscard]] nlohmann::json oci_config(const std::string& payload);

// Unpacks the initrd at `initrd` (a cpio archive, compressed or not, as
// libarchive reads it) into `rootfs`. Device nodes are skipped (the runtime
// gives the container its own /dev) and nothing may land outside `rootfs`.
// Throws keel::Error naming the file and what went wrong.
void unpack_initrd(const std::string& initrd, const std::string& rootfs);

}  // namespace keel::bench
