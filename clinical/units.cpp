// SPDX-License-Identifier: Apache-2.0
// Unit spelling normalization and conversion to an analyte's canonical unit.
#include "clinical/units.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace labwatch::clinical {

namespace {

// Replaces every occurrence of `from` in `text` by `to` (`to` is never longer than `from`).
void replace_all(std::string& text, std::string_view from, std::string_view to) {
  std::size_t at = 0;
  while ((at = text.find(from, at)) != std::string::npos) {
    text.replace(at, from.size(), to);
    at += to.size();
  }
}

}  // namespace

std::string fold_unit(std::string_view unit) {
  // Trim, collapse spaces and lower-case ASCII first, then the micro sign (U+00B5, UTF-8 C2 B5)
  // and the Greek mu (U+03BC, CE BC), both written "u"; then the "mc" spellings of micro.
  // UCUM first: square brackets only delimit an atom ("m[IU]/L" is "mIU/L"), and a curly-braced
  // annotation is a word about the unit ("mmol/mol{creat}" is "mmol/mol creat").
  std::string spelled;
  spelled.reserve(unit.size() + 1);
  for (const char c : unit) {
    if (c == '{') {
      spelled.push_back(' ');
    } else if (c != '[' && c != ']' && c != '}') {
      spelled.push_back(c);
    }
  }
  std::string folded = fold_name(spelled);
  replace_all(folded, "\xC2\xB5", "u");
  replace_all(folded, "\xCE\xBC", "u");
  replace_all(folded, "mcg", "ug");
  replace_all(folded, "mcmol", "umol");
  // A trailing "creat", "cr" or "crea" word abbreviates "creatinine" ("mmol/mol Cr").
  constexpr std::array<std::string_view, 3> kCreatinine = {" creat", " cr", " crea"};
  for (const std::string_view abbreviation : kCreatinine) {
    if (folded.size() > abbreviation.size() &&
        std::string_view(folded).substr(folded.size() - abbreviation.size()) == abbreviation) {
      folded.replace(folded.size() - abbreviation.size() + 1, std::string::npos, "creatinine");
      break;
    }
  }
  return folded;
}

std::optional<double> factor_to_canonical(const Analyte& analyte, std::string_view unit) {
  const std::string folded = fold_unit(unit);
  if (folded.empty()) {
    // Only a unitless analyte (pH) has a value without a unit; elsewhere the unit is never guessed.
    return analyte.unitless() ? std::optional<double>(1.0) : std::nullopt;
  }
  if (folded == fold_unit(analyte.canonical_unit)) {
    return 1.0;
  }
  for (const std::string& alias : analyte.unit_aliases) {
    if (folded == fold_unit(alias)) {
      return 1.0;
    }
  }
  for (const auto& [from, factor] : analyte.conversions) {
    if (folded == fold_unit(from)) {
      return factor;
    }
  }
  return std::nullopt;
}

}  // namespace labwatch::clinical
