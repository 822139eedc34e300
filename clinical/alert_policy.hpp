// SPDX-License-Identifier: Apache-2.0
// The alert policy in force: which rules judge each analyte, who is told (routing) and when mail
// goes. The judgements storage asks for are made here, so storage never reads a rule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/mail_policy.hpp"
#include "clinical/normalized.hpp"
#include "clinical/rule_ref.hpp"
#include "clinical/rules.hpp"

namespace labwatch::clinical {

struct Recipient {
  std::string practitioner_id;  // empty for the default recipient
  std::string email;
  std::string name;
  bool full_phi = false;  // false: initials and report id only; true: name and values
};

// Where alerts go: to every practitioner of the ordering provider (OBR-16 id) and of the sending
// facility, else the fallback. Plain values from the config.
struct Routing {
  std::map<std::string, std::vector<Recipient>, std::less<>> by_provider;
  std::map<std::string, std::vector<Recipient>, std::less<>> by_facility;
  std::vector<Recipient> fallback;
  std::int64_t collect_wait_seconds = 60;  // a new mail waits this long for the rest of a panel
};

// Who is told about a report ordered by `provider_id` (empty: none) from `facility`: the
// recipients of the provider and those of the facility, in that order, each address once (a
// practitioner who matches by both gets one mail); the fallback only when neither matched anyone.
// Recipients without an address are left out.
std::vector<Recipient> recipients_for(const Routing& routing, std::string_view provider_id,
                                      std::string_view facility);

// The alert policy in force: the optimal and trend rules, who is told (routing) and when mail goes
// (mail_policy). Plain values passed in by the caller.
struct AlertPolicy {
  std::map<std::string, OptimalRule, std::less<>> by_analyte;  // analyte -> optimal rule
  // analyte -> trend rules, judged for each result that becomes current against that person's
  // current results of the analyte by collection time. None by default.
  std::map<std::string, std::vector<TrendRule>, std::less<>> trends;
  const AnalyteCatalogue* catalogue = &AnalyteCatalogue::builtin();
  Routing routing;  // empty: alerts are recorded ('unmailed'), no mail is queued
  // Which new alerts are mailed (clinical::decide_mail): old results and preliminaries are not.
  MailPolicy mail_policy;
};

// Who is told about `report` (its ordering provider, its sending facility).
std::vector<Recipient> recipients_for(const NormalizedReport& report, const AlertPolicy& policy);

// The judgement of `result` by its analyte's optimal rule and the lab's own witnesses (evaluate);
// an analyte the policy has no rule for (not even an empty one) is not judged: never violated.
Decision judge_result(const NormalizedResult& result, const AlertPolicy& policy);

// The analyte's key as the policy's trend rules hold it (a view that lives as long as the policy),
// or "" when no trend rule judges `analyte`.
std::string_view trended_analyte(const AlertPolicy& policy, std::string_view analyte);

// The names of every configured trend rule, each once, in a stable order (their index is a
// compact name for a rule while the policy lives).
std::vector<std::string_view> trend_rule_names(const AlertPolicy& policy);

// One trend rule's judgement of one result of a person's history of one analyte.
struct TrendJudgement {
  std::size_t index = 0;  // the judged result's position in the history
  std::string_view rule;  // the trend rule's name (lives as long as the policy)
  RuleRef ref;            // and what it is
  Decision decision;
};

// The trend judgements a change of one person's history of `analyte` calls for. `history` holds
// that person's current results of the analyte after the change, in (collected_at, result id)
// order. Judged: every result collected at or after `from` (the earliest time the change touched)
// whose run reaches back to a changed point: up to the largest window (by count) of the analyte's
// trend rules past `changed` (the new current version's position, if it is in the history), and
// every later result within the largest time span a rule looks back over; with `to_the_end`,
// every result from `from` on. `out` is cleared first (its storage is reused); results are in
// history order, each result's rules in configured order.
void judge_trends(const AlertPolicy& policy, std::string_view analyte,
                  std::span<const TrendPoint> history, UnixSeconds from,
                  std::optional<std::size_t> changed, bool to_the_end,
                  std::vector<TrendJudgement>& out);

}  // namespace labwatch::clinical
