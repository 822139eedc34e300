// SPDX-License-Identifier: Apache-2.0
// The normalized model: results in canonical analytes and units, times in UTC, ready to reconcile
// and store.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "parsers/lab_report.hpp"

namespace labwatch::clinical {

// Seconds since the Unix epoch, UTC.
using UnixSeconds = std::int64_t;

enum class ResultStatus : std::uint8_t { final, corrected, preliminary, cancelled };
std::string_view to_string(
    ResultStatus s) noexcept;  // "final", "corrected", "preliminary", "cancelled"

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
  std::optional<double> ref_low;   // canonical unit
  std::optional<double> ref_high;  // canonical unit
  std::string flags;               // abnormal flags as sent
  ResultStatus status = ResultStatus::final;
  UnixSeconds collected_at = 0;  // specimen collection time, UTC
  std::string code;              // the code that mapped (LOINC or local)
  std::string order_id;          // filler order number (HL7 OBR-3), empty for CSV
  std::string notes;             // NTE text joined by '\n'
  parsers::SourcePos where;
};

// One normalized lab message: who, from where, and what.
struct NormalizedReport {
  std::string facility;          // sending facility (config source or MSH-4)
  std::string control_id;        // MSH-10 (empty for CSV)
  UnixSeconds message_time = 0;  // MSH-7 in UTC (0 when absent); later wins in supersession
  std::string raw_digest;        // digest of the raw message bytes (duplicate detection)
  std::string ordering_provider_id;
  std::string ordering_provider_name;
  PersonIdentity patient;
  std::vector<NormalizedResult>
      results;  // includes cancelled ones (status cancelled): they withdraw
  std::vector<parsers::Refusal> refusals;  // results refused by normalize (unknown_unit, ...)
  std::map<std::string, int> unmapped;     // code -> count of results outside the catalogue
  std::vector<parsers::Warning> warnings;  // the parser's (unknown_charset, ...), for the log
  parsers::SourcePos where;
};

}  // namespace labwatch::clinical
