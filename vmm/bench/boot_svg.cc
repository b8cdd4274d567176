#include "bench/boot_svg.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace keel::bench {
namespace {

constexpr double kWidth = 900;
constexpr double kLabelWidth = 260;  // left column with the event names
constexpr double kPlotWidth = kWidth - kLabelWidth - 90;
constexpr double kRowHeight = 22;
constexpr double kTop = 60;

// Colours of the memory kinds, in the order BootSummary lists them.
constexpr std::array<const char*, 6> kKindColours{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"};

std::string escape(const std::string& text) {
    std::string out;
    for (const char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string num(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", v);
    return text;
}

// A "nice" axis end at or above `v`: 1, 2 or 5 times a power of ten.
double axis_end(double v) {
    if (v <= 0) return 1;
    const double power = std::pow(10.0, std::floor(std::log10(v)));
    for (const double step : {1.0, 2.0, 5.0, 10.0}) {
        if (step * power >= v) return step * power;
    }
    return 10 * power;
}

void text(std::ostringstream& out, double x, double y, const std::string& content, const char* anchor = "start",
          const char* extra = "") {
    out << "<text x=\"" << num(x) << "\" y=\"" << num(y) << "\" text-anchor=\"" << anchor << "\"" << extra << ">"
        << escape(content) << "</text>\n";
}

// The timeline; returns the y below it.
double timeline(std::ostringstream& out, const BootSummary& summary, double y) {
    double end = 0;
    for (const auto& [name, s] : summary.events) end = std::max(end, s.max);
    end = axis_end(end);
    const auto x_of = [&](double ms) { return kLabelWidth + kPlotWidth * ms / end; };
    text(out, 10, y,
         "Boot timeline: ms from launch (bar: median; whisker: min to max over " + std::to_string(summary.runs) +
             " runs)",
         "start", " font-weight=\"bold\"");
    y += 16;
    for (int tick = 0; tick <= 5; ++tick) {
        const double ms = end * tick / 5;
        out << "<line x1=\"" << num(x_of(ms)) << "\" y1=\"" << num(y) << "\" x2=\"" << num(x_of(ms)) << "\" y2=\""
            << num(y + kRowHeight * static_cast<double>(summary.events.size()) + 4) << "\" stroke=\"#ddd\"/>\n";
        text(out, x_of(ms), y + kRowHeight * static_cast<double>(summary.events.size()) + 18, num(ms), "middle");
    }
    for (const auto& [name, s] : summary.events) {
        const double mid = y + kRowHeight / 2;
        text(out, kLabelWidth - 8, mid + 4, name, "end");
        out << "<rect x=\"" << num(kLabelWidth) << "\" y=\"" << num(y + 4) << "\" width=\""
            << num(std::max(1.0, x_of(s.median) - kLabelWidth)) << "\" height=\"" << num(kRowHeight - 8)
            << "\" fill=\"#4e79a7\"/>\n";
        out << "<line x1=\"" << num(x_of(s.min)) << "\" y1=\"" << num(mid) << "\" x2=\"" << num(x_of(s.max))
            << "\" y2=\"" << num(mid) << "\" stroke=\"#222\"/>\n";
        text(out, x_of(s.max) + 6, mid + 4, num(s.median));
        y += kRowHeight;
    }
    return y + 40;
}

// The memory picture; returns the y below it.
double memory(std::ostringstream& out, const BootSummary& summary, double y) {
    double overhead = 0;
    double guest = 0;
    std::vector<std::pair<std::string, double>> kinds;
    for (const auto& [name, s] : summary.rss_kib) {
        if (name == "overhead") {
            overhead = s.median;
        } else if (name == "guest_ram_touched") {
            guest = s.median;
        } else {
            kinds.emplace_back(name, s.median);
        }
    }
    text(out, 10, y, "VMM memory at guest stop: median RSS, KiB (guest RAM is not overhead)", "start",
         " font-weight=\"bold\"");
    y += 16;
    const double end = axis_end(std::max(overhead, guest));
    const auto width_of = [&](double kib) { return kPlotWidth * kib / end; };
    // Overhead: one bar, stacked by kind.
    text(out, kLabelWidth - 8, y + 15, "overhead " + num(overhead) + " KiB", "end");
    double x = kLabelWidth;
    for (size_t i = 0; i < kinds.size(); ++i) {
        const double w = width_of(kinds[i].second);
        out << "<rect x=\"" << num(x) << "\" y=\"" << num(y + 2) << "\" width=\"" << num(w)
            << "\" height=\"18\" fill=\"" << kKindColours[i % kKindColours.size()] << "\"><title>"
            << escape(kinds[i].first) << " " << num(kinds[i].second) << " KiB</title></rect>\n";
        x += w;
    }
    y += 26;
    text(out, kLabelWidth - 8, y + 15, "guest RAM touched " + num(guest) + " KiB", "end");
    out << "<rect x=\"" << num(kLabelWidth) << "\" y=\"" << num(y + 2) << "\" width=\"" << num(width_of(guest))
        << "\" height=\"18\" fill=\"#bab0ac\"/>\n";
    y += 34;
    // Legend.
    double legend_x = kLabelWidth;
    for (size_t i = 0; i < kinds.size(); ++i) {
        out << "<rect x=\"" << num(legend_x) << "\" y=\"" << num(y - 10) << "\" width=\"10\" height=\"10\" fill=\""
            << kKindColours[i % kKindColours.size()] << "\"/>\n";
        const std::string label = kinds[i].first + " " + num(kinds[i].second);
        text(out, legend_x + 14, y, label);
        legend_x += 20 + 7.0 * static_cast<double>(label.size());
    }
    return y + 20;
}

}  // namespace

std::string boot_report_svg(const BootBenchSetup& setup, const BootSummary& summary) {
    std::ostringstream body;
    double y = kTop;
    y = timeline(body, summary, y);
    y = memory(body, summary, y);

    std::ostringstream out;
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(kWidth) << "\" height=\"" << num(y)
        << "\" viewBox=\"0 0 " << num(kWidth) << " " << num(y) << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
        << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    std::string title = "keel bench boot: " + std::to_string(summary.runs) + " runs, " + std::to_string(setup.vcpus) +
                        " vCPU, " + std::to_string(setup.memory_mib) + " MiB, virtio-" + setup.transport;
    text(out, 10, 22, title, "start", " font-size=\"15\" font-weight=\"bold\"");
    text(out, 10, 40,
         setup.emulated ? "EMULATED (QEMU TCG L1): only counts and ratios mean anything"
                        : "kernel " + setup.kernel + ", host: " + setup.host);
    out << body.str() << "</svg>\n";
    return out.str();
}

}  // namespace keel::bench
