#include "bus/bus.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace keel {

void Bus::insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length, std::string name) {
    if (length == 0) throw Error("bus: device '" + name + "' has zero length");
    if (base + length < base) throw Error("bus: device '" + name + "' range overflows");
    for (const auto& e : m_entries) {
        if (base < e.base + e.length && e.base < base + length) {
            throw Error("bus: device '" + name + "' overlaps '" + e.name + "'");
        }
    }
    Entry entry{base, length, std::move(name), std::move(device)};
    const auto pos = std::upper_bound(m_entries.begin(), m_entries.end(), base,
                                      [](uint64_t b, const Entry& e) { return b < e.base; });
    m_entries.insert(pos, std::move(entry));
}

const Bus::Entry* Bus::find(uint64_t addr, uint64_t size) const {
    // Last entry whose base <= addr.
    auto it = std::upper_bound(m_entries.begin(), m_entries.end(), addr,
                               [](uint64_t a, const Entry& e) { return a < e.base; });
    if (it == m_entries.begin()) return nullptr;
    --it;
    const uint64_t offset = addr - it->base;
    if (offset >= it->length || size > it->length - offset) return nullptr;
    return &*it;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
    if (const auto* e = find(addr, data.size())) {
        e->device->read(addr - e->base, data);
        return true;
    }
    std::memset(data.data(), 0, data.size());
    note_unclaimed(addr, data.size(), "read");
    return false;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
    if (const auto* e = find(addr, data.size())) {
        e->device->write(addr - e->base, data);
        return true;
    }
    note_unclaimed(addr, data.size(), "write");
    return false;
}

void Bus::note_unclaimed(uint64_t addr, size_t size, const char* access) const {
    // A guest probing absent hardware is normal (Linux pokes many legacy
    // ports); log the first few at debug level only, so a guest cannot flood
    // the log.
    const uint64_t n = m_unclaimed.fetch_add(1, std::memory_order_relaxed);
    if (n < 16) {
        spdlog::debug("unclaimed {} {} of {} bytes at {:#x}", m_kind == BusKind::Pio ? "port" : "mmio",
                      access, size, addr);
    }
}

}  // namespace keel
