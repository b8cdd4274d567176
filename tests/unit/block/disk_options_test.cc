#include "virtio/block/disk_options.h"

#include <catch2/catch.hpp>
#include <string>

#include "common/error.h"

using namespace keel;
using namespace keel::block;

TEST_CASE("a bare path gives a writable io_uring disk without id or serial", "[block][options]") {
    const DiskOptions o = parse_disk_option("path=/var/disk.img");
    CHECK(o.path == "/var/disk.img");
    CHECK_FALSE(o.read_only());
    CHECK(o.id.empty());
    CHECK(o.serial.empty());
    CHECK(o.io == DiskIoEngine::Uring);
}

TEST_CASE("every key is understood, in any order", "[block][options]") {
    const DiskOptions o = parse_disk_option("serial=SN-0001,io=sync,id=root_disk-1,readonly=on,path=a.img");
    CHECK(o.path == "a.img");
    CHECK(o.read_only());
    CHECK(o.id == "root_disk-1");
    CHECK(o.serial == "SN-0001");
    CHECK(o.io == DiskIoEngine::Sync);
    CHECK_FALSE(parse_disk_option("path=a,readonly=off").read_only());
    CHECK(parse_disk_option("path=a,io=uring").io == DiskIoEngine::Uring);
}

TEST_CASE("a serial of exactly 20 bytes and an id of 32 characters are accepted", "[block][options]") {
    const std::string serial(20, 'S');
    const std::string id(32, 'i');
    const DiskOptions o = parse_disk_option("path=x,serial=" + serial + ",id=" + id);
    CHECK(o.serial == serial);
    CHECK(o.id == id);
}

TEST_CASE("bad --disk values are one-line errors naming the problem", "[block][options]") {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"", "path=FILE is required"},
        {"readonly=on", "path=FILE is required"},
        {"disk.img", "not key=value"},
        {"path=", "path= needs a value"},
        {"path=a,,id=x", "empty item"},
        {"path=a,", "empty item"},
        {"path=a,path=b", "given twice"},
        {"path=a,size=1G", "unknown key 'size'"},
        {"path=a,readonly=yes", "readonly=yes is not on or off"},
        {"path=a,io=aio", "io=aio is not uring or sync"},
        {"path=a,id=has space", "id=has space must be"},
        {"path=a,id=" + std::string(33, 'x'), "must be 1-32 characters"},
        {"path=a,id=a.b", "must be 1-32 characters"},
        {"path=a,serial=" + std::string(21, 'x'), "at most 20"},
        {"path=a,serial=tab\there", "printable ASCII"},
    };
    for (const auto& [text, expected] : cases) {
        INFO("--disk " << text);
        try {
            (void)parse_disk_option(text);
            FAIL("no error");
        } catch (const Error& e) {
            const std::string message = e.what();
            CHECK(message.rfind("--disk: ", 0) == 0);
            CHECK(message.find(expected) != std::string::npos);
            CHECK(message.find('\n') == std::string::npos);
        }
    }
}
