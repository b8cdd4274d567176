#pragma once

// The `keel run` arguments of a jailed keel: the host files they name are
// made visible inside the jail, and the arguments are rewritten to name them
// there.

#include <string>
#include <vector>

namespace keel::jail {

// The host files a run command line names, as keel's own run parser read
// them (cli/jail_cli.cc fills this in).
struct NamedFiles {
    std::string kernel;
    std::string initrd;  // empty: none
    struct Disk {
        std::string path;
        bool read_only = false;
    };
    std::vector<Disk> disks;  // in --disk order
};

// A host file bind-mounted onto `jail_path` inside the jail.
struct JailFile {
    std::string host_path;
    std::string jail_path;  // absolute, inside the jail ("/kernel")
    bool read_only = true;
};

struct RunPlan {
    std::vector<std::string> args;  // `keel run` arguments naming the jail paths
    std::vector<JailFile> files;
};

// Rewrites --kernel, --initrd and each --disk's path= (in both "--opt VALUE"
// and "--opt=VALUE" forms) to /kernel, /initrd, /disk0, /disk1, ...; `args`
// are the arguments after "keel run", already accepted by keel's run parser,
// and `named` is what that parser read from them. Throws keel::Error when the
// arguments and `named` disagree (which would be a bug in the caller).
[[nodiscard]] RunPlan plan_run_arguments(const std::vector<std::string>& args, const NamedFiles& named);

}  // namespace keel::jail
