// SPDX-License-Identifier: Apache-2.0
// Tests of the analyte catalogue: the embedded analytes.csv, the CSV format's errors, upsert,
// lookups.
#include "clinical/analyte_catalogue.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace {

using labwatch::clinical::Analyte;
using labwatch::clinical::AnalyteCatalogue;

constexpr const char* kHeader =
    "key,display_name,specimen,loinc_codes,canonical_unit,unit_aliases,conversions,ref_low,"
    "ref_high,optimal_rule\n";

std::string error_of(const std::string& csv) {
  auto parsed = AnalyteCatalogue::from_csv(csv);
  REQUIRE_FALSE(parsed.has_value());
  return parsed.error();
}

}  // namespace

TEST_CASE("AnalyteCatalogue::builtin holds the 20 analytes of analytes.csv",
          "[clinical][catalogue]") {
  const AnalyteCatalogue& catalogue = AnalyteCatalogue::builtin();
  REQUIRE(catalogue.analytes().size() == 20);
  CHECK(&catalogue == &AnalyteCatalogue::builtin());  // parsed once

  const Analyte* ferritin = catalogue.by_key("ferritin");
  REQUIRE(ferritin != nullptr);
  CHECK(ferritin->display_name == "Ferritin");
  CHECK(ferritin->specimen == "serum/plasma");
  CHECK(ferritin->loinc_codes ==
        std::vector<std::string>{"2276-4", "20567-4", "24373-3", "14723-1"});
  CHECK(ferritin->canonical_unit == "ng/mL");
  CHECK(ferritin->unit_aliases.size() == 9);
  CHECK(ferritin->unit_aliases.back() == "mcg/L");
  CHECK(ferritin->conversions == std::map<std::string, double>{{"pmol/L", 0.445038}});
  CHECK(ferritin->ref_low == 13.0);
  CHECK(ferritin->ref_high == 150.0);
  CHECK(ferritin->optimal_rule == "ge:50;ideal:gt:70");

  const Analyte* magnesium = catalogue.by_key("rbc_magnesium");
  REQUIRE(magnesium != nullptr);
  CHECK(magnesium->conversions ==
        std::map<std::string, double>{{"mEq/L", 1.21525}, {"mg/L", 0.1}, {"mmol/L", 2.4305}});

  const Analyte* folate = catalogue.by_key("serum_folate");
  REQUIRE(folate != nullptr);
  CHECK(folate->ref_low == 3.0);
  CHECK_FALSE(folate->ref_high.has_value());  // empty ref_high

  const Analyte* tsh = catalogue.by_key("tsh");
  REQUIRE(tsh != nullptr);
  CHECK(tsh->conversions.empty());  // empty conversions column
  CHECK(tsh->ref_low == 0.40);

  const Analyte* figlu = catalogue.by_key("figlu");
  REQUIRE(figlu != nullptr);
  CHECK(figlu->canonical_unit == "mmol/mol creatinine");
  CHECK(figlu->conversions.at("ug/mg creatinine") == 0.649533);
}

TEST_CASE("AnalyteCatalogue lookups find analytes by LOINC, local code, key and name",
          "[clinical][catalogue]") {
  AnalyteCatalogue catalogue = AnalyteCatalogue::builtin();
  Analyte extension;
  extension.key = "ferritin";
  extension.local_codes = {"457", "FERR"};
  extension.names = {"Ferritin, serum"};
  catalogue.upsert(extension);

  SECTION("by LOINC, any of the analyte's codes") {
    REQUIRE(catalogue.by_loinc("20567-4") != nullptr);
    CHECK(catalogue.by_loinc("20567-4")->key == "ferritin");
    CHECK(catalogue.by_loinc("14731-4")->key == "rbc_folate");
    CHECK(catalogue.by_loinc("457") == nullptr);  // a local code is not a LOINC
    CHECK(catalogue.by_loinc("718-7") == nullptr);
  }
  SECTION("by local code") {
    REQUIRE(catalogue.by_local_code("FERR") != nullptr);
    CHECK(catalogue.by_local_code("FERR")->key == "ferritin");
    CHECK(catalogue.by_local_code("2276-4") == nullptr);
    CHECK(catalogue.by_local_code("ferr") == nullptr);  // codes are exact
  }
  SECTION("by code, LOINC or local") {
    CHECK(catalogue.by_code("2276-4")->key == "ferritin");
    CHECK(catalogue.by_code("457")->key == "ferritin");
    CHECK(catalogue.by_code("") == nullptr);
  }
  SECTION("by key, exact") {
    CHECK(catalogue.by_key("vitamin_d_25oh")->display_name == "25-hydroxyvitamin D (total D2+D3)");
    CHECK(catalogue.by_key("Ferritin") == nullptr);
  }
  SECTION("by name: the key, the display name and configured names, case and spaces folded") {
    CHECK(catalogue.by_name("ferritin")->key == "ferritin");
    CHECK(catalogue.by_name("FERRITIN")->key == "ferritin");
    CHECK(catalogue.by_name("  ferritin,   SERUM ")->key == "ferritin");
    CHECK(catalogue.by_name("RBC magnesium")->key == "rbc_magnesium");
    CHECK(catalogue.by_name("rbc_magnesium")->key == "rbc_magnesium");
    CHECK(catalogue.by_name("hs-crp (high-sensitivity c-reactive protein)")->key == "hs_crp");
    CHECK(catalogue.by_name("Magnesium") == nullptr);
    CHECK(catalogue.by_name("") == nullptr);
  }
}

TEST_CASE("AnalyteCatalogue::upsert merges into an existing analyte and adds new ones",
          "[clinical][catalogue]") {
  AnalyteCatalogue catalogue = AnalyteCatalogue::builtin();

  SECTION("lists are appended without duplicates, conversions and given scalars overridden") {
    Analyte extension;
    extension.key = "zinc";
    extension.loinc_codes = {"5763-8", "99999-9"};
    extension.local_codes = {"ZN"};
    extension.unit_aliases = {"ug/dL", "mcg/100mL"};
    extension.conversions = {{"umol/L", 6.5}, {"ppm", 100.0}};
    extension.ref_high = 130.0;
    extension.optimal_rule = "range:80-110";
    catalogue.upsert(extension);

    REQUIRE(catalogue.analytes().size() == 20);
    const Analyte* zinc = catalogue.by_key("zinc");
    REQUIRE(zinc != nullptr);
    CHECK(zinc->loinc_codes == std::vector<std::string>{"5763-8", "99999-9"});
    CHECK(zinc->local_codes == std::vector<std::string>{"ZN"});
    CHECK(zinc->unit_aliases.size() == 7);
    CHECK(zinc->unit_aliases.back() == "mcg/100mL");
    CHECK(zinc->conversions.at("umol/L") == 6.5);
    CHECK(zinc->conversions.at("ppm") == 100.0);
    CHECK(zinc->conversions.at("mg/L") == 100.0);
    CHECK(zinc->display_name == "Zinc (serum/plasma)");  // empty in the extension: kept
    CHECK(zinc->ref_low == 60.0);                        // absent in the extension: kept
    CHECK(zinc->ref_high == 130.0);
    CHECK(zinc->optimal_rule == "range:80-110");
    CHECK(catalogue.by_loinc("99999-9") == zinc);  // indexes rebuilt
    CHECK(catalogue.by_local_code("ZN") == zinc);
  }
  SECTION("a new key is added and indexed") {
    Analyte copper;
    copper.key = "copper";
    copper.display_name = "Copper";
    copper.loinc_codes = {"5631-7"};
    copper.canonical_unit = "ug/dL";
    catalogue.upsert(copper);
    REQUIRE(catalogue.analytes().size() == 21);
    CHECK(catalogue.by_loinc("5631-7")->key == "copper");
    CHECK(catalogue.by_name("COPPER")->key == "copper");
    CHECK(catalogue.by_key("ferritin")->key == "ferritin");  // pointers re-made after growth
  }
  SECTION("a contested code keeps its first owner") {
    Analyte other;
    other.key = "other";
    other.canonical_unit = "U/L";
    other.loinc_codes = {"2276-4"};
    catalogue.upsert(other);
    CHECK(catalogue.by_loinc("2276-4")->key == "ferritin");
  }
}

TEST_CASE("AnalyteCatalogue::from_csv reads quotes, CRLF, a BOM, any column order and blank lines",
          "[clinical][catalogue]") {
  const std::string csv =
      "\xEF\xBB\xBF"
      "optimal_rule,key,display_name,specimen,loinc_codes,canonical_unit,unit_aliases,conversions,"
      "ref_low,ref_high,comment\r\n"
      "\r\n"
      "ge:1,a,\"Alpha, \"\"quoted\"\"\",serum,1-1;2-2,mg/L, mg/l ; MG/L "
      ",g/L=1000,0,\"1.5\",\"two\nlines\"\r\n"
      "within_ref,b,Beta,,,U/L,,,,,\n";
  auto parsed = AnalyteCatalogue::from_csv(csv);
  REQUIRE(parsed.has_value());
  REQUIRE(parsed->analytes().size() == 2);
  const Analyte& a = parsed->analytes()[0];
  CHECK(a.key == "a");
  CHECK(a.display_name == "Alpha, \"quoted\"");
  CHECK(a.loinc_codes == std::vector<std::string>{"1-1", "2-2"});
  CHECK(a.unit_aliases == std::vector<std::string>{"mg/l", "MG/L"});
  CHECK(a.conversions == std::map<std::string, double>{{"g/L", 1000.0}});
  CHECK(a.ref_low == 0.0);
  CHECK(a.ref_high == 1.5);
  CHECK(a.optimal_rule == "ge:1");
  const Analyte& b = parsed->analytes()[1];
  CHECK(b.key == "b");
  CHECK(b.loinc_codes.empty());
  CHECK_FALSE(b.ref_low.has_value());
  CHECK_FALSE(b.ref_high.has_value());
}

TEST_CASE("AnalyteCatalogue::from_csv names the line and column of each error",
          "[clinical][catalogue]") {
  const std::string header = kHeader;
  CHECK(error_of("") == "the catalogue is empty: no header line");
  CHECK(error_of("key,display_name\n") == "line 1: the header has no 'specimen' column");
  CHECK(error_of("key,key,display_name\n") == "line 1: the column 'key' appears twice");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,,,,\n") == "line 2: 9 fields where the header has 10");
  CHECK(error_of(header + "\n,A,s,1-1,mg/L,,,,,\n") == "line 3, column 'key': the key is empty");
  CHECK(error_of(header + "a,A,s,1-1,,,,,,\n") ==
        "line 2, column 'canonical_unit': the canonical unit is empty");
  CHECK(error_of(header + "a,A,s,1-1;;2-2,mg/L,,,,,\n") ==
        "line 2, column 'loinc_codes': an item of the ';'-separated list is empty");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,mg/l;,,,,\n") ==
        "line 2, column 'unit_aliases': an item of the ';'-separated list is empty");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,,g/L,,,\n") ==
        "line 2, column 'conversions': 'g/L' is not of the form unit=factor");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,,g/L=x,,,\n") ==
        "line 2, column 'conversions': the factor of 'g/L=x' is not a positive number");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,,g/L=0,,,\n") ==
        "line 2, column 'conversions': the factor of 'g/L=0' is not a positive number");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,,g/L=2;g/L=3,,,\n") ==
        "line 2, column 'conversions': the unit 'g/L' is listed twice");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,,,1;5,,\n") ==
        "line 2, column 'ref_low': '1;5' is not a number");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,,,1,\"2,5\",\n") ==
        "line 2, column 'ref_high': '2,5' is not a number");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,,,9,2,\n") ==
        "line 2, column 'ref_high': the high bound is below the low bound");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,,,,,gx:5\n") ==
        "line 2, column 'optimal_rule': clause 1 'gx:5': 'gx' is not a rule kind");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,,,,,\na,B,s,2-2,mg/L,,,,,\n") ==
        "line 3, column 'key': 'a' is already defined on line 2");
  CHECK(error_of(header + "a,A,s,1-1,mg/L,,,,,\nb,B,s,2-2;1-1,mg/L,,,,,\n") ==
        "line 3, column 'loinc_codes': 1-1 is already a code of 'a'");
  CHECK(error_of(header + "a,\"A,s,1-1,mg/L,,,,,\n") ==
        "line 2: a quoted field is not closed before the end of the text");
}

TEST_CASE("fold_name trims, collapses blanks and lower-cases ASCII only", "[clinical][catalogue]") {
  using labwatch::clinical::fold_name;
  CHECK(fold_name("  RBC \t  Magnesium ") == "rbc magnesium");
  CHECK(fold_name("Folsäure (Erythrozyten)") == "folsäure (erythrozyten)");
  CHECK(fold_name("") == "");
}
