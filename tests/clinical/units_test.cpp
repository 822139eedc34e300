// SPDX-License-Identifier: Apache-2.0
// Tests of unit folding and conversion: every factor of the catalogue, every spelling rule.
#include "clinical/units.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "clinical/analyte_catalogue.hpp"

namespace {

using labwatch::clinical::Analyte;
using labwatch::clinical::AnalyteCatalogue;
using labwatch::clinical::factor_to_canonical;
using labwatch::clinical::fold_unit;

const Analyte& analyte(std::string_view key) {
  const Analyte* found = AnalyteCatalogue::builtin().by_key(key);
  REQUIRE(found != nullptr);
  return *found;
}

std::optional<double> factor(std::string_view key, std::string_view unit) {
  return factor_to_canonical(analyte(key), unit);
}

struct ConversionCase {
  std::string_view analyte;
  std::string_view unit;
  double in;
  double factor;
  double out;  // in x factor, worked out in decimal
};

// One row per conversion of analytes.csv.
constexpr auto kConversions = std::to_array<ConversionCase>({
    {"ferritin", "pmol/L", 177, 0.445038, 78.771726},
    {"rbc_magnesium", "mmol/L", 2.2, 2.4305, 5.3471},
    {"rbc_magnesium", "mEq/L", 4.1, 1.21525, 4.982525},
    {"rbc_magnesium", "mg/L", 52, 0.1, 5.2},
    {"serum_magnesium", "mmol/L", 0.85, 2.4305, 2.065925},
    {"serum_magnesium", "mEq/L", 1.7, 1.21525, 2.065925},
    {"serum_magnesium", "mg/L", 21, 0.1, 2.1},
    {"serum_folate", "nmol/L", 20.5, 0.4414, 9.0487},
    {"rbc_folate", "nmol/L", 885, 0.4414, 390.639},
    {"zinc", "umol/L", 12.1, 6.538, 79.1098},
    {"zinc", "mg/L", 0.85, 100, 85},
    {"zinc", "ug/mL", 0.92, 100, 92},
    {"zinc", "ug/L", 880, 0.1, 88},
    {"rbc_zinc", "umol/L", 189, 6.538, 1235.682},
    {"rbc_zinc", "mg/L", 13.6, 100, 1360},
    {"rbc_zinc", "ug/mL", 11.9, 100, 1190},
    {"rbc_zinc", "ug/L", 11900, 0.1, 1190},
    {"figlu", "ug/mg creatinine", 1.7, 0.649533, 1.1042061},
    {"figlu", "mg/g creatinine", 2.2, 0.649533, 1.4289726},
    {"homocysteine", "mg/L", 1.2, 7.39754, 8.877048},
    {"vitamin_d_25oh", "nmol/L", 106, 0.40064, 42.46784},
    {"vitamin_d3_25oh", "nmol/L", 106, 0.40064, 42.46784},
    {"vitamin_d2_25oh", "nmol/L", 10, 0.41265, 4.1265},
    {"vitamin_a", "umol/L", 2.73, 28.645, 78.20085},
    {"vitamin_a", "mg/L", 0.55, 100, 55},
    {"vitamin_a", "ug/mL", 0.61, 100, 61},
    {"vitamin_a", "ug/L", 777, 0.1, 77.7},
    {"iron", "umol/L", 17.3, 5.5845, 96.61185},
    {"vitamin_b12", "pmol/L", 412, 1.35537, 558.41244},
    {"free_t3", "pmol/L", 4.9, 0.65098, 3.189802},
    {"free_t3", "ng/dL", 0.31, 10, 3.1},
    {"free_t4", "pmol/L", 15.4, 0.077687, 1.1963798},
    {"free_t4", "ng/L", 12.5, 0.1, 1.25},
    {"glucose_fasting", "mmol/L", 5.1, 18.016, 91.8816},
    {"glucose_fasting", "g/L", 0.92, 100, 92},
    {"glucose_fasting", "mg/L", 910, 0.1, 91},
    {"hs_crp", "mg/dL", 0.12, 10, 1.2},
    {"hs_crp", "ug/mL", 0.8, 1, 0.8},
});

}  // namespace

TEST_CASE("factor_to_canonical gives every conversion factor of the catalogue exactly",
          "[clinical][units]") {
  for (const ConversionCase& c : kConversions) {
    CAPTURE(c.analyte, c.unit);
    const std::optional<double> f = factor(c.analyte, c.unit);
    REQUIRE(f.has_value());
    CHECK(*f == c.factor);  // the factor as listed, not a rounded one
    CHECK(c.in * *f == Approx(c.out).epsilon(1e-12));
  }
}

TEST_CASE("factor_to_canonical cases cover each conversion of analytes.csv", "[clinical][units]") {
  std::set<std::pair<std::string, std::string>> tested;
  for (const ConversionCase& c : kConversions) {
    tested.emplace(c.analyte, c.unit);
  }
  std::size_t conversions = 0;
  for (const Analyte& a : AnalyteCatalogue::builtin().analytes()) {
    for (const auto& [unit, f] : a.conversions) {
      CAPTURE(a.key, unit);
      CHECK(tested.count({a.key, unit}) == 1);
      ++conversions;
    }
  }
  CHECK(conversions == tested.size());
}

TEST_CASE("factor_to_canonical is 1 for the canonical unit and every listed alias",
          "[clinical][units]") {
  for (const Analyte& a : AnalyteCatalogue::builtin().analytes()) {
    CAPTURE(a.key);
    CHECK(factor_to_canonical(a, a.canonical_unit) == 1.0);
    for (const std::string& alias : a.unit_aliases) {
      CAPTURE(alias);
      CHECK(factor_to_canonical(a, alias) == 1.0);
    }
  }
}

TEST_CASE("factor_to_canonical folds the spelling of a unit before comparing",
          "[clinical][units]") {
  SECTION("micro sign U+00B5 and Greek mu U+03BC are u") {
    CHECK(factor("vitamin_a", "\xC2\xB5g/l") == 0.1);  // µg/l, as d2_lmb writes retinol
    CHECK(factor("zinc", "\xCE\xBCg/dL") == 1.0);      // μg/dL, as d4_ppe writes it
    CHECK(factor("zinc", "\xCE\xBCmol/L") == 6.538);
    CHECK(factor("homocysteine", "\xC2\xB5mol/l") == 1.0);
  }
  SECTION("mcg is ug and mcmol is umol") {
    CHECK(factor("vitamin_a", "mcg/dL") == 1.0);
    CHECK(factor("vitamin_a", "mcg/mL") == 100.0);
    CHECK(factor("ferritin", "MCG/L") == 1.0);
    CHECK(factor("iron", "mcmol/L") == 5.5845);
  }
  SECTION("case does not matter") {
    CHECK(factor("ferritin", "PMOL/L") == 0.445038);
    CHECK(factor("rbc_magnesium", "MMOL/l") == 2.4305);
    CHECK(factor("serum_magnesium", "meq/l") == 1.21525);
    CHECK(factor("vitamin_d_25oh", "nmol/l") == 0.40064);
  }
  SECTION("surrounding spaces are trimmed and inner runs collapsed") {
    CHECK(factor("ferritin", "  ng/mL\t") == 1.0);
    CHECK(factor("figlu", "mmol/mol    creatinine") == 1.0);
    CHECK(factor("figlu", " ug/mg \t creatinine ") == 0.649533);
  }
  SECTION("a trailing creatinine word may be creat, Cr or crea") {
    CHECK(factor("figlu", "mmol/mol creat") == 1.0);
    CHECK(factor("figlu", "mmol/mol Cr") == 1.0);
    CHECK(factor("figlu", "mmol/mol crea") == 1.0);
    CHECK(factor("figlu", "MMOL/MOL CREATININE") == 1.0);
    CHECK(factor("figlu", "\xC2\xB5g/mg Cr") == 0.649533);
    CHECK(factor("figlu", "mg/g creat") == 0.649533);
    CHECK(factor("figlu", "mmol/mol") == 1.0);  // listed as an alias
  }
}

TEST_CASE("factor_to_canonical refuses a unit it does not know", "[clinical][units]") {
  CHECK_FALSE(factor("ferritin", "U/L").has_value());
  CHECK_FALSE(factor("ferritin", "mg/dL").has_value());  // a real unit, not one of ferritin's
  CHECK_FALSE(factor("ferritin", "nmol/L").has_value());
  CHECK_FALSE(factor("ferritin", "").has_value());
  CHECK_FALSE(factor("ferritin", "   ").has_value());
  CHECK_FALSE(factor("ferritin", "ng / mL").has_value());  // spaces around '/' are not guessed
  CHECK_FALSE(factor("ferritin", "ng/mLx").has_value());
  CHECK_FALSE(factor("figlu", "mmol/mol urea").has_value());
  CHECK_FALSE(factor("figlu", "mmol/mol creatine").has_value());
  CHECK_FALSE(factor("rbc_magnesium", "mg%").has_value());
}

TEST_CASE("fold_unit writes the folded form", "[clinical][units]") {
  CHECK(fold_unit(" \xC2\xB5g / dL ") == "ug / dl");
  CHECK(fold_unit("mcIU/mL") == "mciu/ml");  // only mcg and mcmol are rewritten
  CHECK(fold_unit("MMOL/MOL   Cr") == "mmol/mol creatinine");
  CHECK(fold_unit("Cr") == "cr");  // the word alone is not a unit suffix
  CHECK(fold_unit("") == "");
}
