#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "common/kvm_uapi.h"
#include "kvm/kvm_stats.h"

using namespace keel;

namespace {

constexpr uint32_t kNameSize = 48;

struct StatSpec {
    const char* name;
    uint32_t type;
    uint16_t size;
    uint64_t value;
};

// Lays out a stats file as KVM does: header, descriptors (each followed by
// its name), then the data block.
std::vector<uint8_t> stats_image(const std::vector<StatSpec>& stats) {
    const uint32_t desc_size = sizeof(kvm_stats_desc) + kNameSize;
    kvm_stats_header header{};
    header.name_size = kNameSize;
    header.num_desc = static_cast<uint32_t>(stats.size());
    header.id_offset = sizeof header;
    header.desc_offset = header.id_offset + kNameSize;
    header.data_offset = header.desc_offset + header.num_desc * desc_size;
    std::vector<uint8_t> image(header.data_offset + stats.size() * 8 * 4, 0);
    std::memcpy(image.data(), &header, sizeof header);
    uint32_t data_offset = 0;
    for (size_t i = 0; i < stats.size(); ++i) {
        kvm_stats_desc desc{};
        desc.flags = stats[i].type;
        desc.size = stats[i].size;
        desc.offset = data_offset;
        const size_t at = header.desc_offset + i * desc_size;
        std::memcpy(image.data() + at, &desc, sizeof desc);
        std::strncpy(reinterpret_cast<char*>(image.data() + at + sizeof desc), stats[i].name, kNameSize - 1);
        std::memcpy(image.data() + header.data_offset + data_offset, &stats[i].value, 8);
        data_offset += 8u * stats[i].size;
    }
    return image;
}

}  // namespace

TEST_CASE("KVM binary stats yield cumulative single counters by name", "[kvm_stats]") {
    const auto image = stats_image({{"exits", KVM_STATS_TYPE_CUMULATIVE, 1, 1234},
                                    {"halt_exits", KVM_STATS_TYPE_CUMULATIVE, 1, 56},
                                    {"guest_mode", KVM_STATS_TYPE_INSTANT, 1, 1},
                                    {"halt_poll_hist", KVM_STATS_TYPE_LOG_HIST, 4, 9}});
    const auto counters = parse_kvm_stats(image);
    CHECK(counters.size() == 2);
    CHECK(counters.at("exits") == 1234);
    CHECK(counters.at("halt_exits") == 56);
}

TEST_CASE("truncated or hostile KVM stats images never read out of bounds", "[kvm_stats]") {
    auto image = stats_image({{"exits", KVM_STATS_TYPE_CUMULATIVE, 1, 7}, {"io_exits", KVM_STATS_TYPE_CUMULATIVE, 1, 3}});
    for (size_t cut = 0; cut < image.size(); ++cut) {
        const auto counters = parse_kvm_stats(std::span(image.data(), cut));
        CHECK(counters.size() <= 2);
    }
    auto* header = reinterpret_cast<kvm_stats_header*>(image.data());
    header->data_offset = 0xffff'fff0;
    CHECK(parse_kvm_stats(image).empty());
    header->num_desc = 0xffff'ffff;
    header->desc_offset = 0xffff'fff0;
    CHECK(parse_kvm_stats(image).empty());
}
