// SPDX-License-Identifier: Apache-2.0
// The analyte catalogue: canonical analytes with their codes, units, factors, ranges and targets.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/expected.hpp"

namespace labwatch::clinical {

struct Analyte {
  std::string key;           // "ferritin"
  std::string display_name;  // "Ferritin"
  std::string specimen;
  std::vector<std::string> loinc_codes;       // first is preferred
  std::vector<std::string> local_codes;       // from the config (lab-specific codes)
  std::vector<std::string> names;             // test names that map here (config and CSV)
  std::string canonical_unit;                 // "ng/mL"
  std::vector<std::string> unit_aliases;      // spellings of the canonical unit
  std::map<std::string, double> conversions;  // unit -> factor: value_in_unit * factor = canonical
  std::optional<double> ref_low;
  std::optional<double> ref_high;
  std::string optimal_rule;  // "ge:50;ideal:gt:70"
  // The trend rules shipped for it (clinical::parse_trend_rules), "" none: "trend:falling:30:365".
  // A config's <trend> elements for the analyte replace them.
  std::string trend_rule;
  // What is physically possible, in the canonical unit: a value outside is a misreading and is
  // refused (implausible_value). Set wide, so that a real toxic or deficient value always passes.
  // Without a low bound a negative value is implausible; a site's analyte that may be negative
  // (base excess) says so with a negative plausible_low.
  std::optional<double> plausible_low;
  std::optional<double> plausible_high;

  // A canonical unit of "1" (UCUM's unity) is no unit at all: pH, ratios, indices.
  [[nodiscard]] bool unitless() const noexcept { return canonical_unit == "1"; }
};

class AnalyteCatalogue {
 public:
  // The built-in catalogue (analytes.csv embedded at build time).
  static const AnalyteCatalogue& builtin();

  // Parses the analytes.csv format. Error text names the line and column.
  static parsers::Expected<AnalyteCatalogue, std::string> from_csv(std::string_view csv);

  // Adds an analyte or merges into the one with the same key (codes, names and aliases appended,
  // conversions and non-empty scalar fields overridden). Rebuilds the lookup indexes.
  void upsert(const Analyte& analyte);

  // Lookups return nullptr when nothing matches. When two analytes claim the same code or name,
  // the one listed first wins (from_csv refuses duplicate keys and LOINC codes outright).
  [[nodiscard]] const Analyte* by_key(std::string_view key) const;
  // A LOINC code, else a configured local code.
  [[nodiscard]] const Analyte* by_code(std::string_view code) const;
  [[nodiscard]] const Analyte* by_loinc(std::string_view code) const;       // LOINC codes only
  [[nodiscard]] const Analyte* by_local_code(std::string_view code) const;  // local codes only
  // Case-insensitive and blind to repeated spaces; matches the key, the display name and `names`.
  [[nodiscard]] const Analyte* by_name(std::string_view name) const;
  [[nodiscard]] const std::vector<Analyte>& analytes() const noexcept { return analytes_; }

 private:
  void reindex();
  std::vector<Analyte> analytes_;
  std::map<std::string, std::size_t, std::less<>> by_key_;
  std::map<std::string, std::size_t, std::less<>> by_loinc_;
  std::map<std::string, std::size_t, std::less<>> by_local_;
  std::map<std::string, std::size_t, std::less<>> by_name_;  // keys folded with fold_name
};

// The form under which names are compared: trimmed, inner runs of spaces and tabs collapsed to one
// space, ASCII letters lower-cased (other bytes, e.g. UTF-8 umlauts, are kept as they are).
std::string fold_name(std::string_view name);

}  // namespace labwatch::clinical
