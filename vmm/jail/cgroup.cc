#include "jail/cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/fd.h"

namespace keel::jail {

namespace {

std::set<std::string> words_of_file(const std::string& path) {
    std::ifstream file(path);
    std::set<std::string> words;
    for (std::string word; file >> word;) words.insert(word);
    return words;
}

}  // namespace

VmCgroup::VmCgroup(std::string root, const std::string& id)
    : m_root(std::move(root)), m_parent(m_root + "/keel"), m_path(m_parent + "/" + id) {}

void VmCgroup::write(const std::string& directory, const std::string& file, const std::string& value) const {
    const auto path = directory + "/" + file;
    // No O_CREAT: a file cgroupfs does not have is a key it does not know.
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (!fd.valid() || ::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
        throw Error("cannot write '" + file + "' (" + path + "): " + std::strerror(errno));
    }
}

void VmCgroup::prepare_parent(const std::vector<CgroupSetting>& settings) const {
    const auto controllers_file = m_root + "/cgroup.controllers";
    if (::access(controllers_file.c_str(), R_OK) != 0) {
        throw Error("no cgroup v2 hierarchy at '" + m_root + "' (" + controllers_file + ": " + std::strerror(errno) +
                    "); mount one there or give --cgroup-root");
    }
    const auto available = words_of_file(controllers_file);
    std::set<std::string> needed;
    for (const auto& setting : settings) needed.insert(setting.controller());
    for (const auto& controller : needed) {
        if (!available.contains(controller)) {
            throw Error("controller '" + controller + "' is not available in " + m_root + " (its cgroup.controllers: " +
                        [&] {
                            std::string list;
                            for (const auto& c : available) list += (list.empty() ? "" : " ") + c;
                            return list.empty() ? std::string("none") : list;
                        }() +
                        ")");
        }
    }
    if (::mkdir(m_parent.c_str(), 0755) != 0 && errno != EEXIST) {
        throw Error("cannot create '" + m_parent + "': " + std::strerror(errno));
    }
    // Controllers reach a child only when every ancestor delegates them.
    for (const auto& controller : needed) {
        for (const auto* directory : {&m_root, &m_parent}) {
            if (words_of_file(*directory + "/cgroup.subtree_control").contains(controller)) continue;
            write(*directory, "cgroup.subtree_control", "+" + controller);
        }
    }
}

void VmCgroup::create() const {
    if (::mkdir(m_path.c_str(), 0755) != 0) {
        if (errno == EEXIST) {
            throw Error("'" + m_path + "' already exists (a jail with this id runs, or was left behind: rmdir it)");
        }
        throw Error("cannot create '" + m_path + "': " + std::strerror(errno));
    }
}

void VmCgroup::apply(const std::vector<CgroupSetting>& settings) const {
    for (const auto& setting : settings) write(m_path, setting.file, setting.value);
}

void VmCgroup::join(pid_t pid) const {
    write(m_path, "cgroup.procs", std::to_string(pid));
}

}  // namespace keel::jail
