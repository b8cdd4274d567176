#include "virtio/net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/error.h"
#include "virtio/net/virtio_net_uapi.h"

namespace keel::net {
namespace {

constexpr int kVnetHeaderSize = sizeof(virtio_net_hdr_v1);
// Every offload a TAP may be asked for, probed one by one: kernels differ
// (TUN_F_UFO was refused between 4.14 and 4.19, for one).
constexpr unsigned kOffloadFlags[] = {TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TUN_F_UFO};

ifreq request_for(const std::string& name, short flags) {
    ifreq request{};
    std::memcpy(request.ifr_name, name.data(), std::min(name.size(), sizeof request.ifr_name - 1));
    request.ifr_flags = flags;
    return request;
}

bool interface_exists(const std::string& name) {
    return access(("/sys/class/net/" + name).c_str(), F_OK) == 0;
}

// TUNSETIFF on a fresh /dev/net/tun fd; -errno on failure.
int attach(const std::string& name, short flags, UniqueFd& out) {
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) throw_errno("cannot open /dev/net/tun (for TAP '" + name + "')");
    ifreq request = request_for(name, flags);
    if (ioctl(fd.get(), TUNSETIFF, &request) != 0) return -errno;
    out = std::move(fd);
    return 0;
}

[[noreturn]] void attach_failed(const std::string& name, int error) {
    if (error == EPERM || error == EACCES) {
        if (!interface_exists(name)) {
            throw Error("cannot open TAP '" + name +
                        "': no such interface, and keel may not create one (that needs CAP_NET_ADMIN); create it "
                        "with 'ip tuntap add dev " +
                        name + " mode tap user $USER'");
        }
        throw Error("cannot open TAP '" + name + "': " + std::strerror(error) +
                    " (it belongs to another user; 'ip tuntap add dev " + name +
                    " mode tap user $USER' makes one this user may open)");
    }
    if (error == EINVAL || error == EBUSY) {
        throw Error("cannot open TAP '" + name + "': " + std::strerror(error) +
                    " (is it a TUN device, or in use by another process?)");
    }
    throw Error("cannot open TAP '" + name + "': " + std::strerror(error));
}

}  // namespace

Tap::Tap(std::string name, std::vector<UniqueFd> fds)
    : m_name(std::move(name)), m_fds(std::move(fds)), m_attached(m_fds.size(), true) {}

bool Tap::set_queue_attached(size_t pair, bool attached) {
    if (pair >= m_fds.size() || (pair == 0 && !attached)) return false;
    if (m_attached[pair] == attached) return true;
    ifreq request{};
    request.ifr_flags = static_cast<short>(attached ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE);
    if (ioctl(m_fds[pair].get(), TUNSETQUEUE, &request) != 0) return false;
    m_attached[pair] = attached;
    return true;
}

std::unique_ptr<Tap> Tap::open(const std::string& name, size_t queue_pairs) {
    constexpr short kBase = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    std::vector<UniqueFd> fds;
    UniqueFd first;
    // A multi-queue TAP only accepts IFF_MULTI_QUEUE attaches and a
    // single-queue one only plain ones (EINVAL otherwise): try the wanted
    // mode first, then the other.
    const bool want_multi = queue_pairs > 1;
    short flags = static_cast<short>(kBase | (want_multi ? IFF_MULTI_QUEUE : 0));
    int error = attach(name, flags, first);
    if (error == -EINVAL) {
        flags = static_cast<short>(kBase | (want_multi ? 0 : IFF_MULTI_QUEUE));
        error = attach(name, flags, first);
    }
    if (error != 0) attach_failed(name, -error);
    fds.push_back(std::move(first));
    if ((flags & IFF_MULTI_QUEUE) != 0) {
        while (fds.size() < queue_pairs) {
            UniqueFd next;
            // A TAP allows at most MAX_TAP_QUEUES (256) queues; fewer than
            // asked is fine, the guest gets as many pairs as there are fds.
            if (attach(name, flags, next) != 0) break;
            fds.push_back(std::move(next));
        }
    }
    auto tap = std::unique_ptr<Tap>(new Tap(name, std::move(fds)));
    tap->finish_setup();
    return tap;
}

std::unique_ptr<Tap> Tap::adopt(int fd) {
    const std::string what = "--net fd=" + std::to_string(fd);
    if (fcntl(fd, F_GETFD) < 0) throw Error(what + ": not an open file descriptor");
    ifreq request{};
    if (ioctl(fd, TUNGETIFF, &request) != 0) {
        throw Error(what + ": not a TAP device (" + std::strerror(errno) + ")");
    }
    if ((request.ifr_flags & IFF_TAP) == 0) throw Error(what + ": a TUN device, keel needs a TAP (IFF_TAP)");
    if ((request.ifr_flags & IFF_VNET_HDR) == 0) {
        throw Error(what + ": the TAP was attached without IFF_VNET_HDR, which keel needs");
    }
    if ((request.ifr_flags & IFF_NO_PI) == 0) {
        throw Error(what + ": the TAP was attached without IFF_NO_PI, which keel needs");
    }
    const int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno(what + ": cannot make it nonblocking");
    // Take ownership of a duplicate: the caller's number may be reused by
    // anything keel opens later, and closing it is the caller's business.
    UniqueFd own(fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!own.valid()) throw_errno(what + ": cannot duplicate it");
    std::vector<UniqueFd> fds;
    fds.push_back(std::move(own));
    auto tap = std::unique_ptr<Tap>(new Tap(request.ifr_name, std::move(fds)));
    tap->finish_setup();
    return tap;
}

void Tap::finish_setup() {
    int header_size = kVnetHeaderSize;
    for (const auto& fd : m_fds) {
        if (ioctl(fd.get(), TUNSETVNETHDRSZ, &header_size) != 0) {
            throw_errno("TAP '" + m_name + "': cannot set the vnet header size");
        }
    }
    for (const unsigned flag : kOffloadFlags) {
        // TSO and UFO need checksum offload with them (tun refuses them alone).
        const unsigned probe = flag == TUN_F_CSUM ? flag : (TUN_F_CSUM | flag);
        if (ioctl(m_fds.front().get(), TUNSETOFFLOAD, static_cast<unsigned long>(probe)) == 0) {
            m_supported_offloads |= flag;
        }
    }
    if (ioctl(m_fds.front().get(), TUNSETOFFLOAD, 0UL) != 0) {
        throw_errno("TAP '" + m_name + "': cannot turn offloads off");
    }
    if ((m_supported_offloads & TUN_F_CSUM) == 0) m_supported_offloads = 0;
    // The MTU the interface has now; the guest learns it through
    // VIRTIO_NET_F_MTU. Reading it needs any socket, no privilege.
    const int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock >= 0) {
        ifreq request = request_for(m_name, 0);
        if (ioctl(sock, SIOCGIFMTU, &request) == 0 && request.ifr_mtu > 0) {
            m_mtu = static_cast<unsigned>(request.ifr_mtu);
        }
        close(sock);
    }
}

bool Tap::set_offloads(unsigned tun_flags) {
    // Offloads belong to the interface, not the queue: one call sets all.
    return ioctl(m_fds.front().get(), TUNSETOFFLOAD, static_cast<unsigned long>(tun_flags)) == 0;
}

}  // namespace keel::net
