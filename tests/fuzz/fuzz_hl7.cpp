// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: parse_hl7_file, streaming against in-place splitting, and every view.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/hl7_parser.hpp"

namespace {

using labwatch::parsers::Hl7Field;
using labwatch::parsers::Hl7Message;
using labwatch::parsers::Hl7Splitter;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

// Walks every repetition, component and subcomponent of every field, decoding each.
void visit(const Hl7Message& message) {
  std::string scratch;
  std::size_t decoded = 0;
  for (std::size_t s = 0; s < message.segment_count(); ++s) {
    const auto segment = message.segment(s);
    for (std::size_t f = 1; f <= segment.field_count(); ++f) {
      const Hl7Field field = segment.field(f);
      decoded += field.decode(scratch).size();
      std::array<Hl7Field, 8> reps;
      const std::size_t nr = field.split(reps);
      for (std::size_t r = 0; r < nr && r < reps.size(); ++r) {
        std::array<Hl7Field, 8> comps;
        const std::size_t nc = reps[r].split(comps);
        for (std::size_t c = 0; c < nc && c < comps.size(); ++c) {
          decoded += comps[c].decode(scratch).size();
          decoded += comps[c].subcomponent(2).decode(scratch).size();
          static_cast<void>(labwatch::parsers::parse_hl7_timestamp(comps[c].raw()));
        }
      }
      check(field.repetition_count() == (field.empty() ? 0 : nr));
    }
  }
  static_cast<void>(decoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto file = labwatch::parsers::parse_hl7_file(text);
  check(file.reports.size() == file.raw_messages.size());

  // The streaming splitter, fed in chunks whose size the input picks, cuts the same messages.
  struct Cut {
    std::string bytes;
    std::size_t offset;
    int line;
    bool truncated;
  };
  std::vector<Cut> whole;
  Hl7Splitter in_place(text);
  Hl7Message message;
  while (const auto m = in_place.next()) {
    whole.push_back({std::string(m->bytes), m->offset, m->first_line, m->truncated});
    if (!labwatch::parsers::parse_hl7_message(m->bytes, message)) {
      visit(message);
      static_cast<void>(labwatch::parsers::to_lab_report(message, *m));
    }
  }
  const std::size_t chunk = size == 0 ? 1 : static_cast<std::size_t>(data[0] % 61) + 1;
  Hl7Splitter streaming;
  std::size_t n = 0;
  const auto drain = [&] {
    while (const auto m = streaming.next()) {
      check(n < whole.size() && m->bytes == whole[n].bytes && m->offset == whole[n].offset &&
            m->first_line == whole[n].line && m->truncated == whole[n].truncated &&
            m->index == static_cast<int>(n));
      ++n;
    }
  };
  for (std::size_t i = 0; i < text.size(); i += chunk) {
    streaming.feed(text.substr(i, chunk));
    drain();
  }
  streaming.finish();
  drain();
  check(n == whole.size());
  return 0;
}
