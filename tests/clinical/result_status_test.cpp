// SPDX-License-Identifier: Apache-2.0
// Tests of the OBX-11 status table (HL7 table 0085) and of the values that say "not performed".
#include "clinical/result_status.hpp"

#include <catch2/catch.hpp>
#include <string_view>

namespace {

using labwatch::clinical::is_text_type;
using labwatch::clinical::ResultStatus;
using labwatch::clinical::says_not_performed;
using labwatch::clinical::SkipReason;
using labwatch::clinical::status_meaning;
using labwatch::clinical::StatusEffect;

struct Row {
  char obx11;
  StatusEffect effect;
  ResultStatus status;  // of the stored version (store, withdraw, promote)
  SkipReason skip;      // for skip
};

// Every code of table 0085 (v2.3 to v2.9), in the table's order, and what it does.
constexpr Row kTable0085[] = {
    {'C', StatusEffect::store, ResultStatus::corrected, {}},
    {'D', StatusEffect::withdraw, ResultStatus::cancelled, {}},
    {'F', StatusEffect::store, ResultStatus::final, {}},
    {'I', StatusEffect::skip, {}, SkipReason::pending},
    {'N', StatusEffect::skip, {}, SkipReason::not_asked},
    {'O', StatusEffect::skip, {}, SkipReason::order_detail},
    {'P', StatusEffect::store, ResultStatus::preliminary, {}},
    {'R', StatusEffect::store, ResultStatus::preliminary, {}},
    {'S', StatusEffect::store, ResultStatus::preliminary, {}},
    {'U', StatusEffect::promote, ResultStatus::final, {}},
    {'W', StatusEffect::withdraw, ResultStatus::cancelled, {}},
    {'X', StatusEffect::withdraw, ResultStatus::cancelled, {}},
    {'A', StatusEffect::store, ResultStatus::corrected, {}},
    // No status, and letters outside the table: a result as sent, final.
    {'\0', StatusEffect::store, ResultStatus::final, {}},
    {'Z', StatusEffect::store, ResultStatus::final, {}},
};

}  // namespace

TEST_CASE("status_meaning gives every OBX-11 status of table 0085 its effect",
          "[clinical][result_status]") {
  for (const Row& row : kTable0085) {
    for (const char c :
         {row.obx11, static_cast<char>(row.obx11 >= 'A' && row.obx11 <= 'Z' ? row.obx11 - 'A' + 'a'
                                                                            : row.obx11)}) {
      INFO("OBX-11 '" << (c == '\0' ? std::string_view("(none)") : std::string_view(&c, 1)) << "'");
      const auto meaning = status_meaning(c);
      CHECK(meaning.effect == row.effect);
      if (row.effect == StatusEffect::skip) {
        CHECK(meaning.skip == row.skip);
      } else {
        CHECK(meaning.status == row.status);
      }
    }
  }
}

TEST_CASE("says_not_performed knows the phrases labs print instead of a value",
          "[clinical][result_status]") {
  for (const std::string_view text : {"TNP",
                                      "tnp",
                                      " TNP ",
                                      "QNS",
                                      "CANC",
                                      "Canceled",
                                      "CANCELLED",
                                      "Test not performed",
                                      "TEST  NOT PERFORMED.",
                                      "(Test not performed)",
                                      "Not performed",
                                      "See note",
                                      "SEE NOTE",
                                      "see comment",
                                      "See below",
                                      "Not done",
                                      "DNR",
                                      "Specimen not received",
                                      "Quantity not sufficient",
                                      "Test cancelled",
                                      "Cancelled by lab",
                                      "CANCELED BY LABORATORY",
                                      "cancelled",
                                      "*TNP*"}) {
    INFO(text);
    CHECK(says_not_performed(text));
  }
  // Results and values that are refused as before: never skipped as "not performed".
  for (const std::string_view text :
       {"", "5.2", "<5", "ND", "NEG", "Not detected", "pending", "TNPX", "See", "note",
        "Test not performed because the specimen was hemolyzed and we could not repeat it"}) {
    INFO(text);
    CHECK_FALSE(says_not_performed(text));
  }
}

TEST_CASE("is_text_type is true for TX and FT only", "[clinical][result_status]") {
  CHECK(is_text_type("TX"));
  CHECK(is_text_type("FT"));
  CHECK(is_text_type("tx"));
  CHECK_FALSE(is_text_type("ST"));
  CHECK_FALSE(is_text_type("NM"));
  CHECK_FALSE(is_text_type("SN"));
  CHECK_FALSE(is_text_type(""));
  CHECK_FALSE(is_text_type("TXT"));
}

TEST_CASE("to_string names every skip reason", "[clinical][result_status]") {
  CHECK(labwatch::clinical::to_string(SkipReason::pending) == "pending");
  CHECK(labwatch::clinical::to_string(SkipReason::not_asked) == "not_asked");
  CHECK(labwatch::clinical::to_string(SkipReason::order_detail) == "order_detail");
  CHECK(labwatch::clinical::to_string(SkipReason::comment) == "comment");
  CHECK(labwatch::clinical::to_string(SkipReason::not_performed) == "not_performed");
}

TEST_CASE("coded_says_not_performed reads the code and text of a coded value",
          "[clinical][result_status]") {
  using labwatch::clinical::coded_says_not_performed;
  using labwatch::clinical::is_coded_type;
  for (const std::string_view value :
       {"TNP^Test not performed^L", "X123^Test not performed^L", "^Cancelled by lab",
        "POS^Positive^L^CANC^Cancelled^99LAB", "A^b^L^^^^^^Test cancelled",
        "POS^Positive^L~QNS^Quantity not sufficient^L"}) {
    INFO(value);
    CHECK(coded_says_not_performed(value));
  }
  // A coded result, a coding system named like a phrase, free text: never "not performed".
  for (const std::string_view value : {"POS^Positive^L", "260385009^Negative^SCT", "A^b^TNP",
                                       "A^b^L^c^d^TNP", "", "Test not performed because of X"}) {
    INFO(value);
    CHECK_FALSE(coded_says_not_performed(value));
  }
  CHECK(is_coded_type("CWE"));
  CHECK(is_coded_type("ce"));
  CHECK(is_coded_type("CNE"));
  CHECK(is_coded_type("CF"));
  CHECK_FALSE(is_coded_type("ST"));
  CHECK_FALSE(is_coded_type("CWEX"));
  CHECK_FALSE(is_coded_type(""));
}
