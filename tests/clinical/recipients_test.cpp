// SPDX-License-Identifier: Apache-2.0
// Tests of alert routing (clinical::recipients_for): provider OR facility, each address once, the
// fallback only for nobody.
#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/alert_policy.hpp"

namespace {

using labwatch::clinical::Recipient;
using labwatch::clinical::recipients_for;
using labwatch::clinical::Routing;

Routing clinic() {
  const Recipient lee{"lee", "lee@clinic.example", "Dr. Lee", true};
  const Recipient kim{"kim", "kim@clinic.example", "Dr. Kim", false};
  const Recipient ops{"", "ops@clinic.example", "", false};
  Routing routing;
  routing.by_provider["LEE01"] = {lee};
  routing.by_provider["BOTH"] = {lee, kim};
  routing.by_facility["QDX"] = {kim};
  routing.by_facility["LCA"] = {lee};
  routing.by_facility["NOADDR"] = {Recipient{"x", "", "X", false}};
  routing.fallback = {ops};
  return routing;
}

std::vector<std::string> emails(const std::vector<Recipient>& recipients) {
  std::vector<std::string> out;
  for (const Recipient& r : recipients) {
    out.push_back(r.email);
  }
  return out;
}

}  // namespace

TEST_CASE("recipients_for sends to the provider's and the facility's practitioners, each once",
          "[clinical][routing]") {
  const Routing routing = clinic();
  struct Case {
    std::string_view provider;
    std::string_view facility;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      // The bug this catches: a provider match hid the facility's practitioner.
      {"LEE01", "QDX", {"lee@clinic.example", "kim@clinic.example"}},
      {"LEE01", "LCA", {"lee@clinic.example"}},  // matched twice, told once
      {"BOTH", "QDX", {"lee@clinic.example", "kim@clinic.example"}},
      {"LEE01", "OTHER", {"lee@clinic.example"}},
      {"", "QDX", {"kim@clinic.example"}},
      {"UNKNOWN", "QDX", {"kim@clinic.example"}},
      {"UNKNOWN", "OTHER", {"ops@clinic.example"}},
      {"", "", {"ops@clinic.example"}},
      // A facility whose only practitioner has no address matched nobody: the fallback.
      {"", "NOADDR", {"ops@clinic.example"}},
  };
  for (const Case& c : cases) {
    INFO("provider '" << c.provider << "', facility '" << c.facility << "'");
    CHECK(emails(recipients_for(routing, c.provider, c.facility)) == c.expected);
  }
  SECTION("an empty provider id never matches a provider entry keyed by ''") {
    Routing odd = clinic();
    odd.by_provider[""] = {Recipient{"z", "z@clinic.example", "Z", false}};
    CHECK(emails(recipients_for(odd, "", "OTHER")) ==
          std::vector<std::string>{"ops@clinic.example"});
  }
  SECTION("no routing at all queues nothing") {
    CHECK(recipients_for(Routing{}, "LEE01", "QDX").empty());
  }
}
