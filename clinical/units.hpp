// SPDX-License-Identifier: Apache-2.0
// Unit spelling normalization and conversion to an analyte's canonical unit. Never guesses.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "clinical/analyte_catalogue.hpp"

namespace labwatch::clinical {

// Folds a unit spelling for comparison: UCUM brackets dropped ("m[IU]/L") and annotations made a
// word ("mmol/mol{creat}"), trim, collapse spaces, lower case, µ/μ -> u, mcg -> ug, mcmol -> umol;
// a trailing word creat/Cr/crea becomes "creatinine" ("mmol/mol Cr").
std::string fold_unit(std::string_view unit);

// The factor that takes a value in `unit` to the analyte's canonical unit (1.0 for a spelling of
// the canonical unit or an alias, the listed factor for a conversion, both compared folded), or
// nullopt when the unit is unknown for this analyte, or empty (but for a unitless analyte, whose
// canonical unit is "1"). Never guessed.
std::optional<double> factor_to_canonical(const Analyte& analyte, std::string_view unit);

}  // namespace labwatch::clinical
