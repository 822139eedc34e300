// SPDX-License-Identifier: Apache-2.0
// The alert policy: routing, and the judgements storage asks for.
#include "clinical/alert_policy.hpp"

#include <algorithm>

namespace labwatch::clinical {

namespace {

const Analyte& analyte_of(const AlertPolicy& policy, std::string_view key) {
  // An analyte outside the catalogue still has its absolute clauses checked; it has no fallback
  // reference range for the relative ones.
  static const Analyte uncatalogued;
  const Analyte* analyte = policy.catalogue != nullptr ? policy.catalogue->by_key(key) : nullptr;
  return analyte != nullptr ? *analyte : uncatalogued;
}

const OptimalRule& optimal_rule_of(const AlertPolicy& policy, std::string_view analyte) {
  static const OptimalRule no_target;
  const auto rule = policy.by_analyte.find(analyte);
  return rule != policy.by_analyte.end() ? rule->second : no_target;
}

}  // namespace

// Why both: the documented promise is "ordered by one of their provider ids OR coming from one of
// their facilities"; a provider match must not hide the facility's practitioners.
std::vector<Recipient> recipients_for(const Routing& routing, std::string_view provider_id,
                                      std::string_view facility) {
  std::vector<Recipient> out;
  const auto add = [&out](const std::vector<Recipient>& recipients) {
    for (const Recipient& recipient : recipients) {
      const bool listed = std::any_of(
          out.begin(), out.end(), [&](const Recipient& r) { return r.email == recipient.email; });
      if (!recipient.email.empty() && !listed) {
        out.push_back(recipient);
      }
    }
  };
  if (const auto provider = routing.by_provider.find(provider_id);
      !provider_id.empty() && provider != routing.by_provider.end()) {
    add(provider->second);
  }
  if (const auto found = routing.by_facility.find(facility); found != routing.by_facility.end()) {
    add(found->second);
  }
  if (out.empty()) {
    add(routing.fallback);
  }
  return out;
}

std::vector<Recipient> recipients_for(const NormalizedReport& report, const AlertPolicy& policy) {
  return recipients_for(policy.routing, report.ordering_provider_id, report.facility);
}

Decision judge_result(const NormalizedResult& result, const AlertPolicy& policy) {
  const auto rule = policy.by_analyte.find(result.analyte);
  if (rule == policy.by_analyte.end()) {
    return {};
  }
  return evaluate(result, rule->second, analyte_of(policy, result.analyte));
}

std::string_view trended_analyte(const AlertPolicy& policy, std::string_view analyte) {
  const auto trends = policy.trends.find(analyte);
  if (trends == policy.trends.end() || trends->second.empty()) {
    return {};
  }
  return trends->first;
}

std::vector<std::string_view> trend_rule_names(const AlertPolicy& policy) {
  std::vector<std::string_view> names;
  for (const auto& [analyte, rules] : policy.trends) {
    for (const TrendRule& trend : rules) {
      if (std::find(names.begin(), names.end(), trend.text) == names.end()) {
        names.push_back(trend.text);
      }
    }
  }
  return names;
}

void judge_trends(const AlertPolicy& policy, std::string_view analyte,
                  std::span<const TrendPoint> history, UnixSeconds from,
                  std::optional<std::size_t> changed, bool to_the_end,
                  std::vector<TrendJudgement>& out) {
  out.clear();
  const auto trends = policy.trends.find(analyte);
  if (trends == policy.trends.end() || trends->second.empty()) {
    return;
  }
  const OptimalRule& target = optimal_rule_of(policy, analyte);
  const Analyte& catalogued = analyte_of(policy, analyte);
  std::size_t window = 0;
  std::int64_t span = 0;
  for (const TrendRule& trend : trends->second) {
    window = std::max(window, trend.window());
    span = std::max(span, trend.span_seconds());
  }
  const auto at_time = [](const TrendPoint& point, UnixSeconds t) {
    return point.collected_at < t;
  };
  const auto before_point = [](UnixSeconds t, const TrendPoint& point) {
    return t < point.collected_at;
  };
  const std::size_t first = static_cast<std::size_t>(
      std::lower_bound(history.begin(), history.end(), from, at_time) - history.begin());
  const std::size_t from_change =
      changed && *changed < history.size() ? std::max(first, *changed) : first;
  std::size_t end = to_the_end ? history.size() : std::min(history.size(), from_change + window);
  if (span > 0 && from_change < history.size()) {
    // A rule that looks back by time sees the changed point from every later result within it.
    const UnixSeconds reach = history[from_change].collected_at + span;
    end = std::max(end, static_cast<std::size_t>(
                            std::upper_bound(history.begin(), history.end(), reach, before_point) -
                            history.begin()));
  }
  for (std::size_t i = first; i < end; ++i) {
    const std::span<const TrendPoint> run = history.first(i + 1);
    for (const TrendRule& trend : trends->second) {
      out.push_back({i, trend.text, trend.ref(), evaluate_trend(run, trend, target, catalogued)});
    }
  }
}

}  // namespace labwatch::clinical
