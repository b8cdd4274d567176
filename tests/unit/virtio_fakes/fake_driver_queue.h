#pragma once

// The driver side of one split virtqueue (virtio 1.2 §2.7), laid out in a
// GuestMemory, for device, transport and queue tests. It plays a well-behaved
// driver (add_chain / publish / used_entries, like Linux's virtio_ring) and
// gives raw access to every ring field so a test can play a hostile one.
//
// Layout from `base` (16-aligned): descriptor table (16 * size), avail ring
// (flags, idx, ring[size], used_event), used ring at the next 64-byte boundary
// (flags, idx, ring[size], avail_event), then a data area up to the end of
// base's RAM region from which buffers and indirect tables are allocated
// (bump allocation that wraps around; keep in-flight data well below it).
//
// Typical device test:
//     auto memory = GuestMemory::create({{Gpa{0}, 1 << 20}});
//     FakeDriverQueue driver(memory, 16);
//     virtio::Queue queue(16);
//     driver.configure(queue);
//     REQUIRE(queue.activate(memory, features) == virtio::QueueError::None);
//     const uint16_t head = driver.submit({1, 2, 3}, 64);   // 3 bytes in, 64 out
//     ... run the device ...
//     auto used = driver.used_entries();                    // [{head, len}]
//     auto reply = driver.written(head, used[0].len);

#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY  // its legacy vring_init() is not valid C++
#endif
#include <linux/virtio_ring.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "memory/gpa.h"
#include "memory/guest_memory.h"
#include "virtio/queue/queue.h"

namespace keel::test {

static_assert(std::endian::native == std::endian::little, "virtio 1.x rings are little-endian; so is the host");

// One used ring element as the device wrote it.
struct UsedEntry {
    uint32_t id = 0;
    uint32_t len = 0;
    bool operator==(const UsedEntry&) const = default;
};

class FakeDriverQueue final {
public:
    // Writable buffers start filled with this byte, so a test can tell which
    // bytes the device did not write.
    static constexpr uint8_t kPoison = 0xa5;

    FakeDriverQueue(const GuestMemory& memory, uint16_t size, Gpa base = Gpa{0})
        : m_memory(memory), m_size(size), m_desc(base) {
        if (size == 0) throw std::logic_error("FakeDriverQueue: size 0");
        if (base.value % 16 != 0) throw std::logic_error("FakeDriverQueue: base not 16-aligned");
        m_avail = Gpa{m_desc.value + 16ull * size};
        m_used = Gpa{align_up(m_avail.value + 6 + 2ull * size, 64)};
        m_data_start = align_up(m_used.value + 6 + 8ull * size, 4096);
        const GuestMemoryRegion* region = nullptr;
        for (const auto& r : memory.regions()) {
            if (r.contains(base, 1)) region = &r;
        }
        if (region == nullptr || m_data_start >= region->end()) {
            throw std::logic_error("FakeDriverQueue: rings do not fit in the region at base");
        }
        m_data_end = region->end();
        m_data_next = m_data_start;
        // Zero the rings: flags, indices and event fields start at 0.
        fill(m_desc, m_data_start - m_desc.value, 0);
        for (uint16_t i = size; i > 0; --i) m_free.push_back(static_cast<uint16_t>(i - 1));
    }

    [[nodiscard]] const GuestMemory& memory() const { return m_memory; }
    [[nodiscard]] uint16_t size() const { return m_size; }
    [[nodiscard]] Gpa desc_table() const { return m_desc; }
    [[nodiscard]] Gpa avail_ring() const { return m_avail; }
    [[nodiscard]] Gpa used_ring() const { return m_used; }
    [[nodiscard]] Gpa data_start() const { return Gpa{m_data_start}; }
    [[nodiscard]] size_t free_descriptors() const { return m_free.size(); }

    // What a transport's register writes do: size, ring addresses, ready.
    void configure(virtio::Queue& queue) const {
        queue.set_size(m_size);
        queue.set_desc_table(m_desc);
        queue.set_avail_ring(m_avail);
        queue.set_used_ring(m_used);
        queue.set_ready(true);
    }

    // ---- A well-behaved driver ----

    // Writes `readable` into fresh guest buffers, allocates `writable`
    // buffers of the given lengths (filled with kPoison), links them into one
    // chain (readable first, §2.7.4.2) and puts its head in the avail ring.
    // Not visible to the device until publish().
    uint16_t add_chain(const std::vector<std::vector<uint8_t>>& readable, const std::vector<uint32_t>& writable) {
        const auto buffers = make_buffers(readable, writable);
        const size_t count = buffers.size();
        if (count == 0) throw std::logic_error("FakeDriverQueue: empty chain");
        if (count > m_free.size()) throw std::logic_error("FakeDriverQueue: no free descriptors");
        std::vector<uint16_t> indices;
        for (size_t i = 0; i < count; ++i) indices.push_back(take_free());
        for (size_t i = 0; i < count; ++i) {
            const bool last = i + 1 == count;
            write_descriptor(
                indices[i], buffers[i].addr.value, buffers[i].len,
                static_cast<uint16_t>((buffers[i].writable ? VRING_DESC_F_WRITE : 0) | (last ? 0 : VRING_DESC_F_NEXT)),
                last ? uint16_t{0} : indices[i + 1]);
        }
        m_chains[indices[0]] = ChainRecord{indices, buffers};
        push_avail(indices[0]);
        return indices[0];
    }

    // The same chain as one ring descriptor pointing at an indirect table
    // (§2.7.5.3); needs VIRTIO_RING_F_INDIRECT_DESC on the device side.
    uint16_t add_indirect_chain(const std::vector<std::vector<uint8_t>>& readable,
                                const std::vector<uint32_t>& writable) {
        const auto buffers = make_buffers(readable, writable);
        const size_t count = buffers.size();
        if (count == 0) throw std::logic_error("FakeDriverQueue: empty chain");
        if (m_free.empty()) throw std::logic_error("FakeDriverQueue: no free descriptors");
        const Gpa table = alloc(16 * count, 16);
        for (size_t i = 0; i < count; ++i) {
            const bool last = i + 1 == count;
            write_indirect_descriptor(
                table, static_cast<uint16_t>(i), buffers[i].addr.value, buffers[i].len,
                static_cast<uint16_t>((buffers[i].writable ? VRING_DESC_F_WRITE : 0) | (last ? 0 : VRING_DESC_F_NEXT)),
                last ? uint16_t{0} : static_cast<uint16_t>(i + 1));
        }
        const uint16_t head = take_free();
        write_descriptor(head, table.value, static_cast<uint32_t>(16 * count), VRING_DESC_F_INDIRECT, 0);
        m_chains[head] = ChainRecord{{head}, buffers};
        push_avail(head);
        return head;
    }

    // add_chain() + publish() for the common one-request-one-reply case:
    // `request` as one readable buffer (none when empty), one writable buffer
    // of `writable_len` bytes (none when 0).
    uint16_t submit(const std::vector<uint8_t>& request, uint32_t writable_len) {
        std::vector<std::vector<uint8_t>> readable;
        if (!request.empty()) readable.push_back(request);
        std::vector<uint32_t> writable;
        if (writable_len != 0) writable.push_back(writable_len);
        const uint16_t head = add_chain(readable, writable);
        publish();
        return head;
    }
    uint16_t submit(const std::vector<std::vector<uint8_t>>& readable, const std::vector<uint32_t>& writable) {
        const uint16_t head = add_chain(readable, writable);
        publish();
        return head;
    }

    // avail.idx = number of chains added so far (§2.7.6). The device's pop()
    // sees them from now on.
    void publish() { write_u16(avail_idx_gpa(), m_shadow_avail); }

    // Used entries the device added since the last call (§2.7.8), in order;
    // their descriptors go back to the free list.
    std::vector<UsedEntry> used_entries() {
        std::vector<UsedEntry> entries;
        const uint16_t idx = used_idx();
        for (; m_last_used != idx; ++m_last_used) {
            const UsedEntry entry = used_entry(m_last_used);
            entries.push_back(entry);
            reclaim(entry.id);
        }
        return entries;
    }
    [[nodiscard]] uint16_t used_idx() const { return read_u16(Gpa{m_used.value + 2}); }
    [[nodiscard]] uint16_t used_flags() const { return read_u16(m_used); }
    // The used ring element in slot `slot % size`, collected or not.
    [[nodiscard]] UsedEntry used_entry(uint16_t slot) const {
        const Gpa at{m_used.value + 4 + 8ull * (slot % m_size)};
        return UsedEntry{read_u32(at), read_u32(Gpa{at.value + 4})};
    }

    // The writable part of chain `head` as the device left it (all its
    // writable buffers concatenated), or its first `len` bytes.
    [[nodiscard]] std::vector<uint8_t> written(uint16_t head) const { return written(head, UINT32_MAX); }
    [[nodiscard]] std::vector<uint8_t> written(uint16_t head, uint32_t len) const {
        std::vector<uint8_t> out;
        const auto it = m_chains.find(head);
        if (it == m_chains.end()) throw std::logic_error("FakeDriverQueue: unknown head " + std::to_string(head));
        for (const auto& b : it->second.buffers) {
            if (!b.writable || out.size() >= len) continue;
            const auto bytes = read_bytes(b.addr, std::min<uint64_t>(b.len, len - out.size()));
            out.insert(out.end(), bytes.begin(), bytes.end());
        }
        return out;
    }
    // Where add_chain() put buffer `i` (readable ones first) of chain `head`.
    [[nodiscard]] Gpa buffer_address(uint16_t head, size_t i) const { return m_chains.at(head).buffers.at(i).addr; }

    // ---- Notification suppression, driver side (§2.7.7, §2.7.10) ----

    void set_no_interrupt(bool on) { write_u16(m_avail, on ? VRING_AVAIL_F_NO_INTERRUPT : 0); }
    void set_avail_flags(uint16_t flags) { write_u16(m_avail, flags); }
    // avail->used_event: "interrupt me when used.idx passes this" (EVENT_IDX).
    void set_used_event(uint16_t value) { write_u16(used_event_gpa(), value); }
    // used->avail_event: what the device asked for with EVENT_IDX.
    [[nodiscard]] uint16_t avail_event() const { return read_u16(avail_event_gpa()); }
    [[nodiscard]] bool device_set_no_notify() const { return (used_flags() & VRING_USED_F_NO_NOTIFY) != 0; }
    // Whether a driver that published from `old_idx` to the current avail.idx
    // must kick (Linux's virtqueue_kick_prepare).
    [[nodiscard]] bool kick_needed(uint16_t old_idx, bool event_idx) const {
        if (!event_idx) return !device_set_no_notify();
        const uint16_t now = avail_idx();
        return static_cast<uint16_t>(now - avail_event() - 1) < static_cast<uint16_t>(now - old_idx);
    }

    // ---- Raw access for hostile tests ----

    void write_descriptor(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
        write_indirect_descriptor(m_desc, index, addr, len, flags, next);
    }
    // Entry `index` of a descriptor table at `table` (e.g. from alloc()).
    void write_indirect_descriptor(Gpa table, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags,
                                   uint16_t next) {
        vring_desc desc{};
        desc.addr = addr;
        desc.len = len;
        desc.flags = flags;
        desc.next = next;
        write_obj(Gpa{table.value + 16ull * index}, desc);
    }
    [[nodiscard]] vring_desc descriptor(uint16_t index) const {
        return m_memory.read_obj<vring_desc>(Gpa{m_desc.value + 16ull * index}).value();
    }
    // avail->ring[slot % size] = head, without touching avail.idx.
    void write_avail_entry(uint16_t slot, uint16_t head) {
        write_u16(Gpa{m_avail.value + 4 + 2ull * (slot % m_size)}, head);
    }
    // Puts `head` in the next avail slot (not published).
    void push_avail(uint16_t head) {
        write_avail_entry(m_shadow_avail, head);
        ++m_shadow_avail;
    }
    // Writes avail.idx directly (and continues from there).
    void set_avail_idx(uint16_t idx) {
        m_shadow_avail = idx;
        publish();
    }
    [[nodiscard]] uint16_t avail_idx() const { return read_u16(avail_idx_gpa()); }
    // Writes used.idx directly, as a device would; used_entries() continues
    // from there.
    void set_used_idx(uint16_t idx) {
        write_u16(Gpa{m_used.value + 2}, idx);
        m_last_used = idx;
    }

    // Bump allocation in the data area (wraps to its start when full).
    Gpa alloc(uint64_t len, uint64_t align = 16) {
        uint64_t at = align_up(m_data_next, align);
        if (len > m_data_end - m_data_start) throw std::logic_error("FakeDriverQueue: buffer larger than RAM");
        if (at + len > m_data_end) at = m_data_start;
        m_data_next = at + len;
        return Gpa{at};
    }
    void write_bytes(Gpa gpa, std::span<const uint8_t> bytes) const {
        if (!m_memory.write(gpa, bytes)) throw std::logic_error("FakeDriverQueue: write outside RAM");
    }
    [[nodiscard]] std::vector<uint8_t> read_bytes(Gpa gpa, uint64_t len) const {
        std::vector<uint8_t> out(static_cast<size_t>(len));
        if (!m_memory.read(gpa, out)) throw std::logic_error("FakeDriverQueue: read outside RAM");
        return out;
    }

private:
    struct Buffer {
        Gpa addr;
        uint32_t len = 0;
        bool writable = false;
    };
    struct ChainRecord {
        std::vector<uint16_t> descriptors;
        std::vector<Buffer> buffers;
    };

    static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

    std::vector<Buffer> make_buffers(const std::vector<std::vector<uint8_t>>& readable,
                                     const std::vector<uint32_t>& writable) {
        std::vector<Buffer> buffers;
        for (const auto& bytes : readable) {
            const Gpa at = alloc(bytes.size());
            write_bytes(at, bytes);
            buffers.push_back({at, static_cast<uint32_t>(bytes.size()), false});
        }
        for (const uint32_t len : writable) {
            const Gpa at = alloc(len);
            fill(at, len, kPoison);
            buffers.push_back({at, len, true});
        }
        return buffers;
    }

    uint16_t take_free() {
        const uint16_t index = m_free.back();
        m_free.pop_back();
        return index;
    }
    void reclaim(uint32_t head) {
        const auto it = head <= UINT16_MAX ? m_chains.find(static_cast<uint16_t>(head)) : m_chains.end();
        if (it == m_chains.end() || it->second.descriptors.empty()) return;  // a device bug; tests see it
        for (const uint16_t d : it->second.descriptors) m_free.push_back(d);
        it->second.descriptors.clear();  // keep the buffers for written()
    }

    void fill(Gpa gpa, uint64_t len, uint8_t value) const {
        const auto slice = m_memory.slice(gpa, len);
        if (!slice) throw std::logic_error("FakeDriverQueue: fill outside RAM");
        slice->fill(value);
    }
    template <typename T>
    void write_obj(Gpa gpa, const T& value) const {
        if (!m_memory.write_obj(gpa, value)) throw std::logic_error("FakeDriverQueue: write outside RAM");
    }
    void write_u16(Gpa gpa, uint16_t value) const { write_obj(gpa, value); }
    [[nodiscard]] uint16_t read_u16(Gpa gpa) const { return m_memory.read_obj<uint16_t>(gpa).value(); }
    [[nodiscard]] uint32_t read_u32(Gpa gpa) const { return m_memory.read_obj<uint32_t>(gpa).value(); }

    [[nodiscard]] Gpa avail_idx_gpa() const { return Gpa{m_avail.value + 2}; }
    [[nodiscard]] Gpa used_event_gpa() const { return Gpa{m_avail.value + 4 + 2ull * m_size}; }
    [[nodiscard]] Gpa avail_event_gpa() const { return Gpa{m_used.value + 4 + 8ull * m_size}; }

    const GuestMemory& m_memory;
    uint16_t m_size;
    Gpa m_desc;
    Gpa m_avail;
    Gpa m_used;
    uint64_t m_data_start = 0;
    uint64_t m_data_end = 0;
    uint64_t m_data_next = 0;
    uint16_t m_shadow_avail = 0;
    uint16_t m_last_used = 0;
    std::vector<uint16_t> m_free;  // a stack: lowest index on top
    std::map<uint16_t, ChainRecord> m_chains;
};

}  // namespace keel::test
