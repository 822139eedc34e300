// SPDX-License-Identifier: Apache-2.0
// Byte scans behind the HL7 splitter and tokenizer, in AVX2, SSE2 and scalar code (internal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace labwatch::parsers::hl7_scan {

// The instruction sets the scans are written for. The binary targets any x86-64 (SSE2); the AVX2
// code is compiled for that set alone and runs only on a CPU that reports AVX2, BMI1 and POPCNT.
enum class Isa : std::uint8_t { scalar, sse2, avx2 };

// The fastest set this build and this CPU support; the CPU is probed once.
Isa best_isa() noexcept;

// True when this build and this CPU can run code written for `isa`.
bool isa_supported(Isa isa) noexcept;

// Writes the positions of the line ends (CR, LF, MLLP start 0x0B, MLLP end 0x1C) found in
// data[from, data.size()) to out, in order, until out is full. Returns how many it wrote: fewer
// than out.size() means there are no more, else the search goes on after the last one. `from` <=
// data.size(). The first form runs best_isa(); the second runs `isa`, which must be supported.
std::size_t find_line_ends(std::string_view data, std::size_t from,
                           std::span<std::size_t> out) noexcept;
std::size_t find_line_ends(Isa isa, std::string_view data, std::size_t from,
                           std::span<std::size_t> out) noexcept;

// The first line end in data[from, data.size()), or data.size().
inline std::size_t find_line_end(std::string_view data, std::size_t from) noexcept {
  std::size_t end = data.size();
  find_line_ends(data, from, {&end, 1});
  return end;
}

// Output entries a scan_structure call needs free in each output buffer to make progress.
inline constexpr std::size_t kScanBlock = 64;

// Marks an entry of StructureScan::ends: an escape character occurs in that segment.
inline constexpr std::uint32_t kEscapedEnd = 1u << 31;

// A structural index of one message, built over one or more calls to scan_structure: where every
// field separator, CR and LF is, which of them end a segment, and where escapes and 8-bit bytes
// occur. Positions are 32-bit, so `text` must be shorter than 2^31 bytes.
struct StructureScan {
  std::string_view text;
  char field = '|';     // MSH-1 and the MSH-2 escape character: printable and distinct
  char escape = '\0';   // '\0': the message declares none, so none is reported
  std::size_t pos = 0;  // the next byte to scan; scan_structure moves it on

  // Positions of every field separator, CR and LF at or after the initial `pos`, in text order.
  // A call may write garbage past seps[sep_count] up to seps[sep_count + kScanBlock - 1].
  std::uint32_t* seps = nullptr;
  std::size_t sep_count = 0;
  std::size_t sep_capacity = 0;

  // One entry per CR or LF, in order: its index in `seps`, plus kEscapedEnd when the escape
  // character occurs after the previous CR/LF (or the start of the scan) and before this one.
  std::uint32_t* ends = nullptr;
  std::size_t end_count = 0;
  std::size_t end_capacity = 0;

  bool escape_pending = false;  // an escape character occurs after the last CR/LF so far
  bool any_8bit = false;        // a byte >= 0x80 occurs in the scanned bytes
};

// Scans `scan.text` from `scan.pos` in 64-byte blocks while both outputs have kScanBlock free
// entries. Returns true once the whole text is scanned, false when an output is full: the caller
// then consumes or grows it and calls again. The first form runs best_isa(); the second runs
// `isa`, which must be supported.
bool scan_structure(StructureScan& scan) noexcept;
bool scan_structure(Isa isa, StructureScan& scan) noexcept;

}  // namespace labwatch::parsers::hl7_scan
