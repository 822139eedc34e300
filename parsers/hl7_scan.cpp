// SPDX-License-Identifier: Apache-2.0
// HL7 byte scans: line ends for the splitter, the structural index for the tokenizer, per CPU.
#include "parsers/hl7_scan.hpp"

#include <array>
#include <bit>
#include <cassert>
#include <cstring>

#include "parsers/hl7_text.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
// The AVX2 code is built on x86-64 only, with GCC's or Clang's target attribute.
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace labwatch::parsers::hl7_scan {
namespace {

// ---- Line ends ----

constexpr std::uint32_t kLineEndSet = (1u << '\r') | (1u << '\n') |
                                      (1u << static_cast<unsigned>(hl7_text::kMllpStart)) |
                                      (1u << static_cast<unsigned>(hl7_text::kMllpEnd));

// The four line-end bytes are the only ones of interest at or below 0x1C, the highest of them.
constexpr bool is_line_end(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u <= 0x1C && ((kLineEndSet >> u) & 1u) != 0;
}

// Why candidates: one unsigned compare (byte <= 0x1C) costs two vector operations where four
// equality tests cost seven, and text rarely holds control bytes other than its line ends. Each
// candidate is then checked on its own.
struct ScalarLowBytes {
  static std::uint64_t marks(const char* p) noexcept {
    std::uint64_t m = 0;
    for (unsigned k = 0; k < kScanBlock; ++k) {
      m |= std::uint64_t{static_cast<unsigned char>(p[k]) <= 0x1C} << k;
    }
    return m;
  }
};

#if defined(__SSE2__)
struct Sse2LowBytes {
  static std::uint64_t marks(const char* p) noexcept {
    const __m128i top = _mm_set1_epi8(0x1C);
    std::uint64_t m = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
      m |= std::uint64_t{static_cast<std::uint16_t>(
               _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(b, top), b)))}
           << (16 * k);
    }
    return m;
  }
};
#endif

#if defined(__x86_64__)
struct Avx2LowBytes {
  [[gnu::target("avx2")]] static std::uint64_t marks(const char* p) noexcept {
    const __m256i top = _mm256_set1_epi8(0x1C);
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    return std::uint64_t{static_cast<std::uint32_t>(
               _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(lo, top), lo)))} |
           std::uint64_t{static_cast<std::uint32_t>(
               _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(hi, top), hi)))}
               << 32;
  }
};
#endif

// The search, the same for every instruction set, 64 bytes per step.
template <class Blocks>
inline std::size_t line_ends_blocks(std::string_view data, std::size_t from,
                                    std::span<std::size_t> out) noexcept {
  const char* const p = data.data();
  const std::size_t n = data.size();
  std::size_t count = 0;
  if (out.empty()) {
    return 0;
  }
  for (std::size_t i = from; i < n; i += kScanBlock) {
    std::uint64_t m = 0;
    if (n - i >= kScanBlock) {
      m = Blocks::marks(p + i);
    } else {
      // The last partial block, padded; candidates past the end are dropped.
      alignas(64) std::array<char, kScanBlock> tail{};
      std::memcpy(tail.data(), p + i, n - i);
      m = Blocks::marks(tail.data()) & ((std::uint64_t{1} << (n - i)) - 1);
    }
    for (; m != 0; m &= m - 1) {
      const std::size_t k = i + static_cast<std::size_t>(std::countr_zero(m));
      if (is_line_end(p[k])) {
        out[count++] = k;
        if (count == out.size()) {
          return count;
        }
      }
    }
  }
  return count;
}

std::size_t line_ends_scalar(std::string_view data, std::size_t from,
                             std::span<std::size_t> out) noexcept {
  return line_ends_blocks<ScalarLowBytes>(data, from, out);
}

#if defined(__SSE2__)
std::size_t line_ends_sse2(std::string_view data, std::size_t from,
                           std::span<std::size_t> out) noexcept {
  return line_ends_blocks<Sse2LowBytes>(data, from, out);
}
#endif

#if defined(__x86_64__)
[[gnu::target("avx2,bmi,popcnt"), gnu::flatten]] std::size_t line_ends_avx2(
    std::string_view data, std::size_t from, std::span<std::size_t> out) noexcept {
  return line_ends_blocks<Avx2LowBytes>(data, from, out);
}
#endif

// ---- Structural index ----

// One 64-byte block: bit k describes byte k.
struct Masks {
  std::uint64_t seps = 0;     // field separator, CR or LF
  std::uint64_t ends = 0;     // CR or LF
  std::uint64_t escapes = 0;  // the escape character
  std::uint64_t high = 0;     // non-zero when a byte >= 0x80 occurs
};

struct ScalarBlocks {
  static constexpr bool kPopcount = false;
  static Masks classify(const char* p, char field, char escape) noexcept {
    Masks m;
    for (unsigned k = 0; k < kScanBlock; ++k) {
      const char c = p[k];
      const std::uint64_t bit = std::uint64_t{1} << k;
      if (c == '\r' || c == '\n') {
        m.ends |= bit;
        m.seps |= bit;
      } else if (c == field) {
        m.seps |= bit;
      } else if (c == escape) {
        m.escapes |= bit;
      }
      m.high |= static_cast<std::uint64_t>(static_cast<unsigned char>(c) >> 7);
    }
    return m;
  }
};

#if defined(__SSE2__)
struct Sse2Blocks {
  static constexpr bool kPopcount = false;
  static Masks classify(const char* p, char field, char escape) noexcept {
    const __m128i fs = _mm_set1_epi8(field);
    const __m128i esc = _mm_set1_epi8(escape);
    const __m128i cr = _mm_set1_epi8('\r');
    const __m128i lf = _mm_set1_epi8('\n');
    Masks m;
    __m128i high = _mm_setzero_si128();
    for (std::size_t k = 0; k < 4; ++k) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
      const __m128i ends = _mm_or_si128(_mm_cmpeq_epi8(b, cr), _mm_cmpeq_epi8(b, lf));
      const auto mask = [k](__m128i v) {
        return std::uint64_t{static_cast<std::uint16_t>(_mm_movemask_epi8(v))} << (16 * k);
      };
      m.ends |= mask(ends);
      m.seps |= mask(_mm_or_si128(ends, _mm_cmpeq_epi8(b, fs)));
      m.escapes |= mask(_mm_cmpeq_epi8(b, esc));
      high = _mm_or_si128(high, b);
    }
    m.high = static_cast<unsigned>(_mm_movemask_epi8(high));
    return m;
  }
};
#endif

#if defined(__x86_64__)
// The byte masks of two 32-byte halves as one 64-bit mask.
[[gnu::target("avx2")]] inline std::uint64_t movemask64(__m256i low_half,
                                                        __m256i high_half) noexcept {
  return std::uint64_t{static_cast<std::uint32_t>(_mm256_movemask_epi8(low_half))} |
         std::uint64_t{static_cast<std::uint32_t>(_mm256_movemask_epi8(high_half))} << 32;
}

struct Avx2Blocks {
  static constexpr bool kPopcount = true;  // the AVX2 code is built with POPCNT
  [[gnu::target("avx2")]] static Masks classify(const char* p, char field, char escape) noexcept {
    const __m256i fs = _mm256_set1_epi8(field);
    const __m256i esc = _mm256_set1_epi8(escape);
    const __m256i cr = _mm256_set1_epi8('\r');
    const __m256i lf = _mm256_set1_epi8('\n');
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    const __m256i ends_lo = _mm256_or_si256(_mm256_cmpeq_epi8(lo, cr), _mm256_cmpeq_epi8(lo, lf));
    const __m256i ends_hi = _mm256_or_si256(_mm256_cmpeq_epi8(hi, cr), _mm256_cmpeq_epi8(hi, lf));
    Masks m;
    m.ends = movemask64(ends_lo, ends_hi);
    m.seps = movemask64(_mm256_or_si256(ends_lo, _mm256_cmpeq_epi8(lo, fs)),
                        _mm256_or_si256(ends_hi, _mm256_cmpeq_epi8(hi, fs)));
    m.escapes = movemask64(_mm256_cmpeq_epi8(lo, esc), _mm256_cmpeq_epi8(hi, esc));
    m.high = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_or_si256(lo, hi)));
    return m;
  }
};
#endif

// The scan itself, the same for every instruction set: per block, every separator is stored and
// each CR/LF also becomes an `ends` entry.
template <class Blocks>
inline bool scan_blocks(StructureScan& s) noexcept {
  assert(s.text.size() < kEscapedEnd);
  // Everything in locals: the stores through `seps` and `ends` could otherwise alias `s`.
  const char* const text = s.text.data();
  const std::size_t size = s.text.size();
  const char field = s.field;
  const char escape = s.escape;
  const std::uint64_t escape_enable = escape == '\0' ? 0 : ~std::uint64_t{0};
  std::uint32_t* const seps = s.seps;
  std::uint32_t* const ends = s.ends;
  const std::size_t sep_last = s.sep_capacity < kScanBlock ? 0 : s.sep_capacity - kScanBlock;
  const std::size_t end_last = s.end_capacity < kScanBlock ? 0 : s.end_capacity - kScanBlock;
  std::size_t pos = s.pos;
  std::size_t sep_count = s.sep_count;
  std::size_t end_count = s.end_count;
  bool pending = s.escape_pending;
  std::uint64_t high = 0;
  const bool room = s.sep_capacity >= kScanBlock && s.end_capacity >= kScanBlock;
  while (room && pos < size && sep_count <= sep_last && end_count <= end_last) {
    Masks m;
    if (size - pos >= kScanBlock) {
      m = Blocks::classify(text + pos, field, escape);
    } else {
      // The last partial block, padded with zero bytes, which match nothing (the delimiters are
      // printable).
      alignas(64) std::array<char, kScanBlock> tail{};
      std::memcpy(tail.data(), text + pos, size - pos);
      m = Blocks::classify(tail.data(), field, escape);
    }
    high |= m.high;
    std::uint64_t escapes = m.escapes & escape_enable;
    // A CR/LF at bit b ends a segment: escaped when an escape is below b and above the previous
    // end (or pending from earlier blocks).
    const auto end_entry = [&](std::uint64_t below, std::size_t index) {
      const bool escaped = pending || (escapes & below) != 0;
      escapes &= ~below;
      pending = false;
      const auto entry = static_cast<std::uint32_t>(index);
      ends[end_count++] = escaped ? entry | kEscapedEnd : entry;
    };
    std::uint64_t bits = m.seps;
    std::uint32_t* out = seps + sep_count;
    const auto base = static_cast<std::uint32_t>(pos);
    std::size_t found = 0;
    if constexpr (Blocks::kPopcount) {
      // Each end's index among the separators by counting those below it; then every separator,
      // four per round and unconditionally (the room is there), which avoids a branch each.
      for (std::uint64_t e = m.ends; e != 0; e &= e - 1) {
        const std::uint64_t below = (e & (0 - e)) - 1;
        end_entry(below, sep_count + static_cast<std::size_t>(std::popcount(m.seps & below)));
      }
      found = static_cast<std::size_t>(std::popcount(bits));
      for (std::size_t k = 0; k < found; k += 4) {
        out[k] = base + static_cast<std::uint32_t>(std::countr_zero(bits));
        bits &= bits - 1;
        out[k + 1] = base + static_cast<std::uint32_t>(std::countr_zero(bits));
        bits &= bits - 1;
        out[k + 2] = base + static_cast<std::uint32_t>(std::countr_zero(bits));
        bits &= bits - 1;
        out[k + 3] = base + static_cast<std::uint32_t>(std::countr_zero(bits));
        bits &= bits - 1;
      }
    } else {
      // Without a popcount instruction (a library call), separators one by one.
      for (; bits != 0; bits &= bits - 1, ++found) {
        const auto k = static_cast<unsigned>(std::countr_zero(bits));
        out[found] = base + k;
        if (((m.ends >> k) & 1u) != 0) {
          end_entry((std::uint64_t{1} << k) - 1, sep_count + found);
        }
      }
    }
    pending = pending || escapes != 0;
    sep_count += found;
    pos += kScanBlock;
  }
  s.pos = pos < size ? pos : size;
  s.sep_count = sep_count;
  s.end_count = end_count;
  s.escape_pending = pending;
  s.any_8bit = s.any_8bit || high != 0;
  return pos >= size;
}

bool scan_scalar(StructureScan& s) noexcept { return scan_blocks<ScalarBlocks>(s); }

#if defined(__SSE2__)
bool scan_sse2(StructureScan& s) noexcept { return scan_blocks<Sse2Blocks>(s); }
#endif

#if defined(__x86_64__)
// flatten: the generic loop and the AVX2 classifier are inlined here, into code built for AVX2.
[[gnu::target("avx2,bmi,popcnt"), gnu::flatten]] bool scan_avx2(StructureScan& s) noexcept {
  return scan_blocks<Avx2Blocks>(s);
}
#endif

// ---- Dispatch ----

Isa probe() noexcept {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
      __builtin_cpu_supports("popcnt")) {
    return Isa::avx2;
  }
#endif
#if defined(__SSE2__)
  return Isa::sse2;
#else
  return Isa::scalar;
#endif
}

using LineEndsFn = std::size_t (*)(std::string_view, std::size_t, std::span<std::size_t>) noexcept;
using ScanFn = bool (*)(StructureScan&) noexcept;

LineEndsFn line_ends_for(Isa isa) noexcept {
  switch (isa) {
    case Isa::avx2:
#if defined(__x86_64__)
      return line_ends_avx2;
#endif
    case Isa::sse2:
#if defined(__SSE2__)
      return line_ends_sse2;
#endif
    case Isa::scalar:
      break;
  }
  return line_ends_scalar;
}

ScanFn scan_for(Isa isa) noexcept {
  switch (isa) {
    case Isa::avx2:
#if defined(__x86_64__)
      return scan_avx2;
#endif
    case Isa::sse2:
#if defined(__SSE2__)
      return scan_sse2;
#endif
    case Isa::scalar:
      break;
  }
  return scan_scalar;
}

}  // namespace

Isa best_isa() noexcept {
  static const Isa isa = probe();
  return isa;
}

bool isa_supported(Isa isa) noexcept {
  return static_cast<int>(isa) <= static_cast<int>(best_isa());
}

std::size_t find_line_ends(std::string_view data, std::size_t from,
                           std::span<std::size_t> out) noexcept {
  static const LineEndsFn fn = line_ends_for(best_isa());
  return fn(data, from, out);
}

std::size_t find_line_ends(Isa isa, std::string_view data, std::size_t from,
                           std::span<std::size_t> out) noexcept {
  assert(isa_supported(isa));
  return line_ends_for(isa)(data, from, out);
}

bool scan_structure(StructureScan& scan) noexcept {
  static const ScanFn fn = scan_for(best_isa());
  return fn(scan);
}

bool scan_structure(Isa isa, StructureScan& scan) noexcept {
  assert(isa_supported(isa));
  return scan_for(isa)(scan);
}

}  // namespace labwatch::parsers::hl7_scan
