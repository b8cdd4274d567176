#include "virtio/transport_core.h"

#include <linux/virtio_config.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <bit>
#include <exception>
#include <string>
#include <utility>

#include "common/error.h"

namespace keel::virtio {

namespace {

constexpr uint8_t kAcknowledge = VIRTIO_CONFIG_S_ACKNOWLEDGE;
constexpr uint8_t kDriver = VIRTIO_CONFIG_S_DRIVER;
constexpr uint8_t kDriverOk = VIRTIO_CONFIG_S_DRIVER_OK;
constexpr uint8_t kFeaturesOk = VIRTIO_CONFIG_S_FEATURES_OK;
constexpr uint8_t kNeedsReset = VIRTIO_CONFIG_S_NEEDS_RESET;
constexpr uint8_t kFailed = VIRTIO_CONFIG_S_FAILED;
// The bits a driver may set; DEVICE_NEEDS_RESET belongs to the device (§2.1).
constexpr uint8_t kDriverBits = kAcknowledge | kDriver | kDriverOk | kFeaturesOk | kFailed;

constexpr uint64_t kVersion1 = 1ull << VIRTIO_F_VERSION_1;
constexpr uint32_t kMaxQueueSize = 32768;  // §2.7: Queue Size max 32768

uint32_t feature_window(uint64_t features, uint32_t select) {
    if (select > 1) return 0;
    return static_cast<uint32_t>(features >> (32 * select));
}

void validate_device(const VirtioDevice& device) {
    const auto sizes = device.queue_max_sizes();
    const std::string name(device.name());
    if (sizes.empty()) throw Error("virtio device " + name + " has no queue");
    for (const uint16_t size : sizes) {
        if (size == 0 || size > kMaxQueueSize || !std::has_single_bit(size)) {
            throw Error("virtio device " + name + " offers a queue of " + std::to_string(size) +
                        " entries; a split queue holds a power of two up to 32768");
        }
    }
    if ((device.device_features() & kVersion1) == 0) {
        throw Error("virtio device " + name + " does not offer VIRTIO_F_VERSION_1 (keel has no legacy transport)");
    }
}

}  // namespace

TransportCore::TransportCore(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory, EventRegistry& events,
                             VirtioNotifier& notifier)
    : m_device(std::move(device)),
      m_memory(memory),
      m_events(events),
      m_notifier(notifier),
      m_device_features(m_device ? m_device->device_features() : 0) {
    if (!m_device) throw Error("virtio transport created without a device");
    validate_device(*m_device);
    const auto sizes = m_device->queue_max_sizes();
    m_queues.reserve(sizes.size());
    for (const uint16_t size : sizes) {
        m_queues.emplace_back(size);
        UniqueFd fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!fd.valid()) throw_errno("eventfd for a virtio queue of " + std::string(m_device->name()));
        m_kick_fd_numbers.push_back(fd.get());
        m_kick_fds.push_back(std::move(fd));
    }
}

TransportCore::~TransportCore() {
    const std::lock_guard lock(m_mutex);
    if (m_device_active) m_device->reset();
}

// --- Features ---

void TransportCore::set_device_features_select(uint32_t select) {
    const std::lock_guard lock(m_mutex);
    m_device_features_select = select;
}

uint32_t TransportCore::device_features_select() const {
    const std::lock_guard lock(m_mutex);
    return m_device_features_select;
}

uint32_t TransportCore::device_features_window() const {
    const std::lock_guard lock(m_mutex);
    return feature_window(m_device_features, m_device_features_select);
}

void TransportCore::set_driver_features_select(uint32_t select) {
    const std::lock_guard lock(m_mutex);
    m_driver_features_select = select;
}

uint32_t TransportCore::driver_features_select() const {
    const std::lock_guard lock(m_mutex);
    return m_driver_features_select;
}

uint32_t TransportCore::driver_features_window() const {
    const std::lock_guard lock(m_mutex);
    return feature_window(m_driver_features, m_driver_features_select);
}

void TransportCore::write_driver_features_window(uint32_t value) {
    const std::lock_guard lock(m_mutex);
    if ((status() & kFeaturesOk) != 0) return;
    if (m_driver_features_select > 1) {
        // No device offers bits above 63; acking one fails FEATURES_OK.
        if (value != 0) m_driver_features_beyond_64 = true;
        return;
    }
    const unsigned shift = 32 * m_driver_features_select;
    m_driver_features = (m_driver_features & ~(0xffffffffull << shift)) | (uint64_t{value} << shift);
}

uint64_t TransportCore::acked_features() const {
    const std::lock_guard lock(m_mutex);
    return m_driver_features;
}

// --- Queues ---

void TransportCore::set_queue_select(uint32_t index) {
    const std::lock_guard lock(m_mutex);
    m_queue_select = index;
}

uint32_t TransportCore::queue_select() const {
    const std::lock_guard lock(m_mutex);
    return m_queue_select;
}

Queue* TransportCore::selected_queue() {
    return m_queue_select < m_queues.size() ? &m_queues[m_queue_select] : nullptr;
}

const Queue* TransportCore::selected_queue() const {
    return m_queue_select < m_queues.size() ? &m_queues[m_queue_select] : nullptr;
}

uint16_t TransportCore::queue_max_size() const {
    const std::lock_guard lock(m_mutex);
    const Queue* queue = selected_queue();
    return queue ? queue->max_size() : 0;
}

uint16_t TransportCore::queue_size() const {
    const std::lock_guard lock(m_mutex);
    const Queue* queue = selected_queue();
    return queue ? queue->size() : 0;
}

bool TransportCore::queue_ready() const {
    const std::lock_guard lock(m_mutex);
    const Queue* queue = selected_queue();
    return queue ? queue->ready() : false;
}

uint64_t TransportCore::queue_address(QueueAddress which) const {
    const std::lock_guard lock(m_mutex);
    const Queue* queue = selected_queue();
    if (!queue) return 0;
    switch (which) {
        case QueueAddress::Desc:
            return queue->desc_table().value;
        case QueueAddress::Driver:
            return queue->avail_ring().value;
        case QueueAddress::Device:
            return queue->used_ring().value;
    }
    return 0;
}

uint32_t TransportCore::queue_address_half(QueueAddress which, AddressHalf half) const {
    const uint64_t address = queue_address(which);
    return static_cast<uint32_t>(half == AddressHalf::Low ? address : address >> 32);
}

bool TransportCore::queue_writable(const Queue& queue) {
    if ((status() & kDriverOk) == 0 && !queue.ready()) return true;
    log_once(m_logged_queue_write, "queue register written after DRIVER_OK or while the queue is ready; ignored");
    return false;
}

void TransportCore::set_queue_size(uint16_t size) {
    const std::lock_guard lock(m_mutex);
    Queue* queue = selected_queue();
    if (queue && queue_writable(*queue)) queue->set_size(size);
}

void TransportCore::set_queue_address(QueueAddress which, uint64_t gpa) {
    const std::lock_guard lock(m_mutex);
    Queue* queue = selected_queue();
    if (!queue || !queue_writable(*queue)) return;
    switch (which) {
        case QueueAddress::Desc:
            queue->set_desc_table(Gpa(gpa));
            break;
        case QueueAddress::Driver:
            queue->set_avail_ring(Gpa(gpa));
            break;
        case QueueAddress::Device:
            queue->set_used_ring(Gpa(gpa));
            break;
    }
}

void TransportCore::set_queue_address_half(QueueAddress which, AddressHalf half, uint32_t value) {
    // Read-modify-write of one half; the two locks are fine because a driver
    // programs a queue from one thread, and a racing driver only hurts itself.
    const uint64_t old = queue_address(which);
    const uint64_t updated = half == AddressHalf::Low ? (old & 0xffffffff00000000ull) | value
                                                      : (old & 0xffffffffull) | (uint64_t{value} << 32);
    set_queue_address(which, updated);
}

void TransportCore::write_queue_ready(uint32_t value) {
    const std::lock_guard lock(m_mutex);
    Queue* queue = selected_queue();
    if (!queue || value > 1) return;
    if ((status() & kDriverOk) != 0) {
        log_once(m_logged_queue_write, "queue enable changed after DRIVER_OK; ignored");
        return;
    }
    queue->set_ready(value == 1);
}

// --- Status ---

StatusWrite TransportCore::write_status(uint8_t value) {
    const std::lock_guard lock(m_mutex);
    if (value == 0) {
        reset_locked();
        return StatusWrite::Reset;
    }
    const uint8_t current = status();
    uint8_t added = static_cast<uint8_t>(value & kDriverBits & ~current);
    if ((added & kFeaturesOk) != 0) added = negotiate_features_locked(added);
    if ((added & kDriverOk) != 0) {
        added = activate_locked(added);
    } else {
        m_status.fetch_or(added, std::memory_order_acq_rel);
    }
    return StatusWrite::Updated;
}

uint8_t TransportCore::negotiate_features_locked(uint8_t requested) {
    const uint8_t after = static_cast<uint8_t>(status() | requested);
    const bool ordered = (after & (kAcknowledge | kDriver)) == (kAcknowledge | kDriver);
    const bool subset = (m_driver_features & ~m_device_features) == 0 && !m_driver_features_beyond_64;
    const bool modern = (m_driver_features & kVersion1) != 0;
    if (ordered && subset && modern) return requested;
    // §2.2.2 / §3.1.1 step 6: the device refuses by leaving FEATURES_OK clear
    // on read-back. Not a guest error worth more than one line.
    log_once(m_logged_status, "driver features refused (unoffered bit, no VERSION_1, or out of order)");
    return static_cast<uint8_t>(requested & ~(kFeaturesOk | kDriverOk));
}

uint8_t TransportCore::activate_locked(uint8_t requested) {
    const uint8_t current = status();
    const uint8_t after = static_cast<uint8_t>(current | requested);
    if ((after & kFeaturesOk) == 0 || (after & (kFailed | kNeedsReset)) != 0) {
        log_once(m_logged_status, "DRIVER_OK without FEATURES_OK, or after FAILED/NEEDS_RESET; ignored");
        requested = static_cast<uint8_t>(requested & ~kDriverOk);
        m_status.fetch_or(requested, std::memory_order_acq_rel);
        return requested;
    }
    // DRIVER_OK is visible before the device runs: a queue error found below
    // adds DEVICE_NEEDS_RESET on top of it (§2.1.2).
    m_status.fetch_or(requested, std::memory_order_acq_rel);
    for (size_t i = 0; i < m_queues.size(); ++i) {
        Queue& queue = m_queues[i];
        if (!queue.ready()) continue;
        const QueueError error = queue.activate(m_memory, m_driver_features);
        if (error != QueueError::None) {
            spdlog::warn("virtio {}: queue {} rejected at DRIVER_OK: {}", m_device->name(), i, describe(error));
            m_notifier.set_needs_reset();
            return requested;
        }
    }
    m_device_active = true;
    const ActivationContext context{m_memory, m_queues, m_kick_fd_numbers, m_driver_features, m_notifier, m_events};
    bool activated = false;
    try {
        activated = m_device->activate(context);
    } catch (const std::exception& e) {
        // E.g. the event loop could not watch a kick fd: the device cannot run.
        spdlog::warn("virtio {}: activation failed: {}", m_device->name(), e.what());
    }
    if (!activated) m_notifier.set_needs_reset();
    return requested;
}

void TransportCore::reset_locked() {
    // The device first: it stops touching the queues (under its own lock)
    // before they are reset below.
    if (m_device_active) m_device->reset();
    m_device_active = false;
    for (Queue& queue : m_queues) queue.reset();
    for (const UniqueFd& fd : m_kick_fds) {
        uint64_t count = 0;
        // Drain a kick left over from before the reset; EAGAIN when none.
        [[maybe_unused]] const ssize_t n = ::read(fd.get(), &count, sizeof count);
    }
    m_device_features_select = 0;
    m_driver_features_select = 0;
    m_driver_features = 0;
    m_driver_features_beyond_64 = false;
    m_queue_select = 0;
    m_status.store(0, std::memory_order_release);
    m_needs_reset_logged.store(false, std::memory_order_relaxed);
    m_resets.fetch_add(1, std::memory_order_relaxed);
}

bool TransportCore::mark_needs_reset() {
    const uint8_t before = m_status.fetch_or(kNeedsReset, std::memory_order_acq_rel);
    if ((before & kNeedsReset) != 0) return false;
    m_needs_reset.fetch_add(1, std::memory_order_relaxed);
    if (!m_needs_reset_logged.exchange(true, std::memory_order_relaxed)) {
        spdlog::warn("virtio {}: DEVICE_NEEDS_RESET set; the driver must reset the device", m_device->name());
    }
    return true;
}

// --- Configuration space ---

void TransportCore::read_config(uint64_t offset, std::span<uint8_t> data) const {
    const std::lock_guard lock(m_mutex);
    m_device->read_config(offset, data);
}

void TransportCore::write_config(uint64_t offset, std::span<const uint8_t> data) {
    const std::lock_guard lock(m_mutex);
    m_device->write_config(offset, data);
}

// --- Notifications and statistics ---

void TransportCore::notify(uint32_t queue_index) {
    if (queue_index >= m_kick_fds.size()) {
        log_once(m_logged_notify, "notify for a queue that does not exist; ignored");
        return;
    }
    m_kicks.fetch_add(1, std::memory_order_relaxed);
    const uint64_t one = 1;
    // Only fails (EAGAIN) when the counter is at 2^64-2: the device has
    // plenty of kicks pending already.
    [[maybe_unused]] const ssize_t n = ::write(m_kick_fds[queue_index].get(), &one, sizeof one);
}

std::vector<DeviceCounter> TransportCore::counters() const {
    std::vector<DeviceCounter> result = m_device->counters();
    result.emplace_back("kicks", m_kicks.load(std::memory_order_relaxed));
    result.emplace_back("interrupts", m_interrupts.load(std::memory_order_relaxed));
    result.emplace_back("resets", m_resets.load(std::memory_order_relaxed));
    result.emplace_back("needs_reset", m_needs_reset.load(std::memory_order_relaxed));
    return result;
}

std::vector<std::string> TransportCore::queue_states() const {
    std::vector<std::string> states;
    for (size_t i = 0; i < m_queues.size(); ++i) states.push_back("q" + std::to_string(i) + " " + m_queues[i].describe_state());
    return states;
}

void TransportCore::log_once(std::atomic<bool>& flag, const char* what) const {
    if (!flag.exchange(true, std::memory_order_relaxed)) spdlog::warn("virtio {}: {}", m_device->name(), what);
}

}  // namespace keel::virtio
