// SPDX-License-Identifier: Apache-2.0
// The normalized model: results in canonical analytes and units, times in UTC, ready to reconcile
// and store.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/lab_report.hpp"

namespace labwatch::clinical {

// Seconds since the Unix epoch, UTC.
using UnixSeconds = std::int64_t;

enum class ResultStatus : std::uint8_t { final, corrected, preliminary, cancelled };
std::string_view to_string(
    ResultStatus s) noexcept;  // "final", "corrected", "preliminary", "cancelled"

// Why a result's printed reference range is not used, or none when it is.
enum class RangeProblem : std::uint8_t {
  none,
  not_printed,       // the field is empty
  not_a_range,       // text in none of the shapes labs print, or a low bound above the high one
  ambiguous_number,  // a bound such as "1,571" with no decimal mark known
  sex_unknown,       // sex-specific, and none of its parts is for the patient's sex
  unit_mismatch,     // printed in another unit than the value's
  does_not_fit,      // its magnitude fits neither the value's unit nor the analyte
};
// The word stored for it ("lab", "none", "unit_mismatch", ...), and back (nullopt: unknown word).
std::string_view to_key(RangeProblem problem) noexcept;
std::optional<RangeProblem> range_problem_from_key(std::string_view key) noexcept;
// A phrase for people: "printed in another unit than the value", ...
std::string_view to_string(RangeProblem problem) noexcept;
// Why a line was skipped instead of stored or refused.
enum class SkipReason : std::uint8_t {
  pending,        // OBX-11 I: the result is not ready yet
  not_asked,      // OBX-11 N: the test was not asked for
  order_detail,   // OBX-11 O: order detail, no result
  comment,        // a text line (OBX-2 TX/FT) that is no number: a comment
  not_performed,  // the value says the test was not done (TNP, QNS, CANC, ...)
};

// "pending", "not_asked", "order_detail", "comment", "not_performed".
std::string_view to_string(SkipReason reason) noexcept;

// An observation line that is no result and no error: skipped, counted, and for not_performed
// recorded, so that a trend shows the gap.
struct SkippedLine {
  SkipReason reason = SkipReason::pending;
  std::string analyte;  // canonical key; empty when the code is not in the catalogue
  std::string code;     // the code that mapped, else OBX-3 as sent
  std::optional<UnixSeconds> collected_at;  // when known
  std::string order_id;
  std::string raw_value;  // as sent, e.g. "TNP" (patient data: never logged)
  parsers::SourcePos where;
};

// The person as one lab reported them, with what reconciliation matches on.
struct PersonIdentity {
  std::string authority;   // assigning authority (HL7 CX.4 of the MR identifier; CSV: the source's
                           // authority)
  std::string mrn;         // identifier within that authority
  std::string family;      // as sent (UTF-8)
  std::string given;       // first given name only
  std::string birth_date;  // YYYY-MM-DD, empty when unknown
  char sex = 'U';          // 'F', 'M' or 'U'
  [[nodiscard]] std::string patient_key() const { return authority + "|" + mrn; }
};

struct NormalizedResult {
  std::string analyte;             // canonical key, e.g. "ferritin"
  double value = 0;                // in the canonical unit
  std::string comparator;          // "", "<", ">", "<=", ">="
  std::string unit;                // canonical unit
  std::string raw_value;           // as sent
  std::string raw_unit;            // as sent
  std::string raw_range;           // as sent
  std::optional<double> ref_low;   // canonical unit; the lab's printed range, only when usable
  std::optional<double> ref_high;  // canonical unit
  // Why ref_low/ref_high is not the lab's printed range (none: it is). A judgement without a lab
  // range falls back to the catalogue's, and says so.
  RangeProblem range_problem = RangeProblem::not_printed;
  std::string flags;  // abnormal flags as sent
  // Half a unit of the last digit the lab printed, in the canonical unit, when the value was
  // converted from another unit (0 when it was not: then the value is exactly what was printed).
  // Bounds are judged with it: 150 nmol/L of vitamin D is not above 60 ng/mL.
  double tolerance = 0;
  // Decimals to show the canonical value with: the lab's precision, converted (-1 unknown).
  int shown_decimals = -1;
  // A stand-in: the fraction analyte this total was read from ("vitamin_d3_25oh" for a 25-OH D3
  // result taken as the total 25-OH vitamin D); empty for a real total and any other result.
  std::string fraction;
  ResultStatus status = ResultStatus::final;
  UnixSeconds collected_at = 0;  // specimen collection time, UTC
  std::string code;              // the code that mapped (LOINC or local)
  std::string order_id;          // filler order number (HL7 OBR-3), empty for CSV
  std::string notes;             // NTE text joined by '\n'
  // OBX-11 U without a value: no version of its own; the stored preliminary becomes final.
  bool promote_only = false;
  std::string parent_order_id;  // HL7 OBR-29: the order this result corrects or follows up
  parsers::SourcePos where;
};

// One result whose code maps to no analyte, as the lab sent it: what `labwatch unmapped` shows
// (the latest name and unit of each code) and `labwatch explain` lists line by line. Test names and
// units only: no value, no patient data.
struct UnmappedLine {
  std::string code;  // the key it is counted under (NormalizedReport::unmapped)
  std::string name;  // OBX-3 text (or its alternate), the CSV test name; empty when none
  std::string unit;  // OBX-6 / the CSV unit, as sent
  parsers::SourcePos where;
};

// One normalized lab message: who, from where, and what.
struct NormalizedReport {
  std::string facility;          // sending facility (config source or MSH-4)
  std::string control_id;        // MSH-10 (empty for CSV)
  UnixSeconds message_time = 0;  // MSH-7, else OBR-22, in UTC (0 when absent); later wins
  // HL7 only: neither MSH-7 nor OBR-22 gave a time, so the versions are ordered by arrival
  // (storage uses its ingest time), never as time 0.
  bool message_time_from_arrival = false;
  std::string raw_digest;  // digest of the raw message bytes (duplicate detection)
  std::string ordering_provider_id;
  std::string ordering_provider_name;
  PersonIdentity patient;
  std::vector<NormalizedResult>
      results;  // includes cancelled ones (status cancelled): they withdraw
  std::vector<parsers::Refusal> refusals;    // results refused by normalize (unknown_unit, ...)
  std::map<std::string, int> unmapped;       // code -> count of results outside the catalogue
  std::vector<UnmappedLine> unmapped_lines;  // the same results one by one, in file order
  std::vector<parsers::Warning> warnings;    // the parser's (unknown_charset, ...), for the log
  std::vector<SkippedLine> skipped;          // pending, comment and not-performed lines
  parsers::SourcePos where;
};

}  // namespace labwatch::clinical
