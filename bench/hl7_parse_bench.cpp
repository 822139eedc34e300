// SPDX-License-Identifier: Apache-2.0
// HL7 parse benchmark: Hl7Splitter over a reused 1 MiB buffer, every message parsed, OBX decoded.
// Usage: hl7_parse_bench FILE [--reports]; --reports builds each message's LabReport instead.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/hl7_parser.hpp"
#include "parsers/hl7_scan.hpp"

namespace {

using labwatch::parsers::Hl7Field;
using labwatch::parsers::Hl7Message;
using labwatch::parsers::RawMessage;

struct Totals {
  std::uint64_t bytes = 0;
  std::uint64_t messages = 0;
  std::uint64_t obx = 0;
  std::uint64_t errors = 0;
  std::uint64_t checksum = 0;  // keeps the compiler from dropping the decoding
};

// Decodes OBX-3 (all six components), OBX-5, OBX-6.1, OBX-7, OBX-11 and OBX-14 of every OBX.
class Extractor {
 public:
  void message(const Hl7Message& m, Totals& t) {
    for (std::size_t i = 0; i < m.segment_count(); ++i) {
      const auto seg = m.segment(i);
      if (seg.id() != "OBX") {
        continue;
      }
      ++t.obx;
      std::array<Hl7Field, 6> code;
      seg.field(3).repetition(1).split(code);
      for (std::size_t c = 0; c < code.size(); ++c) {
        t.checksum += code[c].decode(scratch_[c]).size();
      }
      t.checksum += seg.field(5).decode(scratch_[6]).size();
      t.checksum += seg.field(6).component(1).decode(scratch_[7]).size();
      t.checksum += seg.field(7).decode(scratch_[8]).size();
      const std::string_view status = seg.field(11).component(1).raw();
      t.checksum += status.empty() ? 0u : static_cast<unsigned char>(status.front());
      if (const auto ts =
              labwatch::parsers::parse_hl7_timestamp(seg.field(14).component(1).raw())) {
        t.checksum += static_cast<std::uint64_t>(ts->minute);
      }
    }
  }

 private:
  std::array<std::string, 9> scratch_;
};

rusage usage_now() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage;
}

double cpu_seconds(const rusage& u) {
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

int run(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [--reports]\n", argv[0]);
    return 2;
  }
  const bool reports = argc > 2 && std::string_view(argv[2]) == "--reports";
  const int fd = ::open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::perror(argv[1]);
    return 1;
  }
  std::vector<char> buffer(1u << 20);
  labwatch::parsers::Hl7Splitter splitter;
  Hl7Message message;
  Extractor extractor;
  Totals t;
  const auto handle = [&](const RawMessage& raw) {
    ++t.messages;
    if (parse_hl7_message(raw.bytes, message)) {
      ++t.errors;
      return;
    }
    if (!reports) {
      extractor.message(message, t);
      return;
    }
    const auto report = labwatch::parsers::to_lab_report(message, raw);
    if (!report) {
      ++t.errors;
      return;
    }
    for (const auto& order : report->orders) {
      t.obx += order.observations.size();
      for (const auto& o : order.observations) {
        t.checksum += o.value.size() + o.code.code.size();
      }
    }
  };

  const double cpu_start = cpu_seconds(usage_now());
  const auto start = std::chrono::steady_clock::now();
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      std::perror("read");
      ::close(fd);
      return 1;
    }
    if (n == 0) {
      break;
    }
    t.bytes += static_cast<std::uint64_t>(n);
    // In place: the buffer is read into again only after next() has returned nullopt.
    splitter.feed_in_place(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    while (const auto raw = splitter.next()) {
      handle(*raw);
    }
  }
  splitter.finish();
  while (const auto raw = splitter.next()) {
    handle(*raw);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const rusage end = usage_now();
  const double cpu = cpu_seconds(end) - cpu_start;
  ::close(fd);

  const double mb = static_cast<double>(t.bytes) / 1e6;
  using labwatch::parsers::hl7_scan::Isa;
  const Isa isa = labwatch::parsers::hl7_scan::best_isa();
  std::printf(
      "C++ labwatch (%s): %.1f MB in %.3f s: %.1f MB/s, %.0f messages/s, %.0f OBX/s, CPU %.1f "
      "MB/s, peak RSS %.1f MiB, %llu errors, checksum %llu, %s scans\n",
      reports ? "to_lab_report" : "parse + decode OBX", mb, seconds, mb / seconds,
      static_cast<double>(t.messages) / seconds, static_cast<double>(t.obx) / seconds, mb / cpu,
      static_cast<double>(end.ru_maxrss) / 1024.0, static_cast<unsigned long long>(t.errors),
      static_cast<unsigned long long>(t.checksum),
      isa == Isa::avx2   ? "AVX2"
      : isa == Isa::sse2 ? "SSE2"
                         : "scalar");
  return t.errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hl7_parse_bench: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "hl7_parse_bench: unknown exception\n");
  }
  return 1;
}
