#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "virtio/net/net_backend.h"

namespace keel::net {

// A Linux TAP interface as a virtio-net backend: one nonblocking fd per
// queue pair, each opened with IFF_VNET_HDR and a 12-byte vnet header
// (struct virtio_net_hdr_v1), so offload metadata passes through untouched
// and checksums/segmentation can stay undone end to end.
class Tap final : public virtio::NetBackend {
public:
    // Attaches to interface `name`, creating it when it does not exist (that
    // needs CAP_NET_ADMIN; a TAP keel creates disappears when keel exits).
    // Asks for `queue_pairs` queues (IFF_MULTI_QUEUE) when > 1; an existing
    // TAP created single-queue gets one. Throws keel::Error naming the TAP
    // and what to do about it.
    [[nodiscard]] static std::unique_ptr<Tap> open(const std::string& name, size_t queue_pairs);
    // Takes over an open TAP fd (from an orchestrator, `--net fd=N`). It
    // must be a TAP (not TUN) attached with IFF_VNET_HDR. One queue pair.
    [[nodiscard]] static std::unique_ptr<Tap> adopt(int fd);

    [[nodiscard]] const std::string& interface_name() const { return m_name; }
    [[nodiscard]] unsigned mtu() const { return m_mtu; }

    [[nodiscard]] size_t queue_pairs() const override { return m_fds.size(); }
    [[nodiscard]] int queue_fd(size_t pair) const override { return m_fds.at(pair).get(); }
    [[nodiscard]] unsigned supported_offloads() const override { return m_supported_offloads; }
    [[nodiscard]] bool set_offloads(unsigned tun_flags) override;
    // TUNSETQUEUE with IFF_ATTACH_QUEUE / IFF_DETACH_QUEUE (multi-queue
    // TAPs; queue 0 always stays attached). Detaching drops the frames the
    // queue held.
    [[nodiscard]] bool set_queue_attached(size_t pair, bool attached) override;

private:
    Tap(std::string name, std::vector<UniqueFd> fds);
    void finish_setup();

    std::string m_name;
    std::vector<UniqueFd> m_fds;
    std::vector<bool> m_attached;  // per fd; TUNSETQUEUE refuses a no-op change
    unsigned m_mtu = 1500;
    unsigned m_supported_offloads = 0;
};

}  // namespace keel::net
