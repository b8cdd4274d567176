#pragma once

// `keel jail`: keel run, confined the way Firecracker's jailer confines
// Firecracker (docs/security.md, "keel jail").

#include "jail/jail_options.h"
#include "jail/run_arguments.h"

namespace keel::jail {

struct JailRequest {
    JailOptions options;
    RunPlan run;            // keel run's arguments, rewritten, and the files they name
    bool uses_tap = false;  // a --net tap=: /dev/net/tun goes into the jail
};

// Jails this process and execs keel run in it. Returns only as the waiting
// parent of --new-pid-ns (keel's exit status); every failing step throws
// keel::Error "jail: <step>: <reason>".
[[nodiscard]] int run_jail(const JailRequest& request);

}  // namespace keel::jail
