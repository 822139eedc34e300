// SPDX-License-Identifier: Apache-2.0
// Results written for people: numbers at the lab's precision, ranges, and where a value lies.
#include "clinical/wording.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include "clinical/lab_range.hpp"
#include "parsers/text.hpp"

namespace labwatch::clinical {

namespace {

using Kind = RuleClause::Kind;

constexpr int kMaxDecimals = 6;

std::string bounds_text(std::optional<double> low, std::optional<double> high, int decimals) {
  if (low && high) {
    return format_shown(*low, decimals) + "-" + format_shown(*high, decimals);
  }
  if (low) {
    return ">= " + format_shown(*low, decimals);
  }
  if (high) {
    return "<= " + format_shown(*high, decimals);
  }
  return "";
}

std::string with_unit(std::string text, std::string_view unit) {
  if (text.empty() || unit.empty() || unit == "1") {
    return text;
  }
  return text + " " + std::string(unit);
}

// Only the characters that carry meaning: "148 - 616" and "148-616" read alike.
std::string squeezed(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c != ' ' && c != '\t') {
      out += c;
    }
  }
  return out;
}

// The lab's text with its unit when it printed none of its own ("148-616" + "pmol/L").
std::string lab_text(const RangeFacts& facts) {
  const std::string_view raw = parsers::trim(facts.raw_range);
  const std::string_view unit = parsers::trim(facts.raw_unit);
  const bool ends_in_digit = !raw.empty() && raw.back() >= '0' && raw.back() <= '9';
  if (unit.empty() || !ends_in_digit) {
    return std::string(raw);
  }
  return std::string(raw) + " " + std::string(unit);
}

// The argument of a clause as written ("1.0" of "lt:1.0").
std::string_view argument_of(std::string_view clause_text) {
  const std::size_t colon = clause_text.rfind(':');
  return colon == std::string_view::npos ? std::string_view{} : clause_text.substr(colon + 1);
}

bool sets_low(const RuleClause& clause) {
  return clause.kind == Kind::ge || clause.kind == Kind::gt || clause.kind == Kind::range;
}
bool sets_high(const RuleClause& clause) {
  return clause.kind == Kind::le || clause.kind == Kind::lt || clause.kind == Kind::range;
}

std::string_view side(const FindingFacts& facts) {
  if (facts.target_low && facts.value <= *facts.target_low) {
    return "below";
  }
  if (facts.target_high && facts.value >= *facts.target_high) {
    return "above";
  }
  return "outside";
}

}  // namespace

std::string format_shown(double value, int decimals) {
  if (!std::isfinite(value)) {
    return "";
  }
  const int shown = decimals < 0 ? kMaxDecimals : std::min(decimals, kMaxDecimals);
  // Rounded here, half away from zero, so that 0.125 shows as 0.13 whatever printf does.
  const double scale = std::pow(10.0, shown);
  double rounded = std::round(value * scale) / scale;
  if (rounded == 0.0) {
    rounded = 0.0;  // no "-0"
  }
  char buffer[64];
  const int n = std::snprintf(buffer, sizeof buffer, "%.*f", shown, rounded);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buffer) {
    return "";
  }
  std::string text(buffer, static_cast<std::size_t>(n));
  if (decimals < 0 && text.find('.') != std::string::npos) {
    while (text.back() == '0') {
      text.pop_back();
    }
    if (text.back() == '.') {
      text.pop_back();
    }
  }
  return text;
}

std::string describe_range(const RangeFacts& facts, const Analyte& analyte) {
  const std::string lab = lab_text(facts);
  if (facts.problem == RangeProblem::none && (facts.ref_low || facts.ref_high)) {
    const std::string shown =
        with_unit(bounds_text(facts.ref_low, facts.ref_high, facts.decimals), facts.unit);
    // The lab's text beside it when it reads otherwise (another unit, precision or shape).
    if (lab.empty() || squeezed(lab) == squeezed(shown) ||
        squeezed(lab) == squeezed(bounds_text(facts.ref_low, facts.ref_high, facts.decimals))) {
      return shown;
    }
    return shown + " (lab: " + lab + ")";
  }
  const std::string catalogue =
      with_unit(bounds_text(analyte.ref_low, analyte.ref_high, facts.decimals), facts.unit);
  std::string why;
  if (facts.problem == RangeProblem::not_printed || lab.empty()) {
    why = "the lab printed none";
  } else {
    why = "lab range " + lab + " unusable: " + std::string(to_string(facts.problem));
  }
  if (catalogue.empty()) {
    return facts.problem == RangeProblem::not_printed || lab.empty() ? std::string() : why;
  }
  return catalogue + " (catalogue range; " + why + ")";
}

namespace {

// "120 ng/mL (2026-01-02), 78 ng/mL (2026-05-03)": the unit after each value, the date when given.
std::string evidence_text(const FindingFacts& facts, std::string_view joint) {
  std::string out;
  for (std::size_t i = 0; i < facts.evidence.size(); ++i) {
    const EvidencePoint& p = facts.evidence[i];
    out += i == 0 ? "" : std::string(i + 1 == facts.evidence.size() ? joint : ", ");
    out += with_unit(format_shown(p.value, facts.decimals), facts.unit);
    if (!p.when.empty()) {
      out += " (" + p.when + ")";
    }
  }
  return out;
}

std::string describe_trend(const FindingFacts& facts) {
  const auto parsed = parse_trend_rule(facts.rule);
  if (!parsed) {
    return "outside the optimal target";
  }
  const TrendRule& trend = parsed.value();
  std::string what;
  std::string_view joint = ", ";
  switch (trend.kind) {
    case TrendRule::Kind::falling:
      what = "fell by more than " + format_shown(trend.fraction * 100.0, -1) + " %";
      joint = " to ";
      break;
    case TrendRule::Kind::falling_within: {
      what = "fell by at least " + format_shown(trend.fraction * 100.0, -1) + " % within " +
             std::to_string(trend.days) + " days";
      if (facts.evidence.size() == 2 && facts.evidence[0].value > 0.0) {
        const double fall = (1.0 - facts.evidence[1].value / facts.evidence[0].value) * 100.0;
        what =
            "fell " + format_shown(fall, 0) + " % within " + std::to_string(trend.days) + " days";
      }
      joint = " to ";
      break;
    }
    case TrendRule::Kind::away:
      what = "moving away from the optimal target for " + std::to_string(trend.count) + " results";
      break;
    case TrendRule::Kind::consecutive:
      what =
          std::to_string(trend.count) + (trend.count == 1 ? " decline" : " declines") + " in a row";
      break;
    case TrendRule::Kind::toward: {
      const bool low_edge =
          facts.evidence.size() >= 2 && facts.evidence.back().value < facts.evidence.front().value;
      const std::string band =
          with_unit(bounds_text(facts.target_low, facts.target_high, facts.decimals), facts.unit);
      what = std::string("moving toward the ") + (low_edge ? "lower" : "upper") +
             " edge of the optimal band" + (band.empty() ? std::string() : " " + band);
      joint = " to ";
      break;
    }
  }
  return facts.evidence.empty() ? what : what + ": " + evidence_text(facts, joint);
}

}  // namespace

std::string describe_finding(const FindingFacts& facts, const OptimalRule* configured) {
  const RuleRef ref = rule_ref(facts.rule);
  if (ref.is_trend()) {
    return describe_trend(facts);
  }
  if (ref.source == RuleRef::Source::lab_range) {
    const std::string range =
        with_unit(bounds_text(facts.target_low, facts.target_high, facts.decimals), facts.unit);
    return range.empty() ? std::string("outside the lab's range")
                         : "outside the lab's range " + range;
  }
  if (ref.source == RuleRef::Source::lab_flag) {
    switch (read_lab_flag(facts.flags)) {
      case LabFlag::low:
        return "flagged low by the lab";
      case LabFlag::high:
        return "flagged high by the lab";
      default:
        return "flagged abnormal by the lab";
    }
  }
  const RuleClause* clause = nullptr;
  if (configured != nullptr) {
    const auto found = std::find_if(configured->clauses.begin(), configured->clauses.end(),
                                    [&](const RuleClause& c) { return c.text == facts.rule; });
    clause = found == configured->clauses.end() ? nullptr : &*found;
  }
  if (clause == nullptr) {
    return "outside the optimal target";
  }
  const auto hard_has = [&](bool (*sets)(const RuleClause&)) {
    return std::any_of(configured->clauses.begin(), configured->clauses.end(),
                       [&](const RuleClause& c) { return !c.ideal && sets(c); });
  };
  const std::string written(argument_of(clause->text));
  const int derived = facts.decimals < 0 ? 2 : facts.decimals + 1;
  switch (clause->kind) {
    case Kind::ge:
    case Kind::gt:
      if (!clause->ideal) {
        return "below the minimum of " + written;
      }
      return hard_has(sets_low) ? "above the minimum, below the ideal of " + written
                                : "below the ideal of " + written;
    case Kind::le:
    case Kind::lt:
      if (!clause->ideal) {
        return "above the maximum of " + written;
      }
      return hard_has(sets_high) ? "below the maximum, above the ideal of " + written
                                 : "above the ideal of " + written;
    case Kind::range:
      return std::string(side(facts)) +
             (clause->ideal ? " the ideal range " : " the optimal range ") + written;
    case Kind::within_ref:
      return std::string(side(facts)) + " the reference range " +
             with_unit(bounds_text(facts.target_low, facts.target_high, facts.decimals),
                       facts.unit);
    case Kind::ref_upper_third:
    case Kind::ref_upper_half:
    case Kind::ref_lower_half: {
      const std::string part = clause->kind == Kind::ref_upper_third  ? "the upper third"
                               : clause->kind == Kind::ref_upper_half ? "the upper half"
                                                                      : "the lower half";
      const std::string bound =
          clause->kind == Kind::ref_lower_half
              ? (facts.target_high ? "<= " + format_shown(*facts.target_high, derived) : "")
              : (facts.target_low ? ">= " + format_shown(*facts.target_low, derived) : "");
      return std::string(side(facts)) + " " + part + " of the reference range" +
             (bound.empty() ? std::string() : " (" + with_unit(bound, facts.unit) + ")");
    }
  }
  return "outside the optimal target";
}

std::string_view alert_tier(std::string_view rule, const OptimalRule* configured) {
  const RuleRef ref = rule_ref(rule);
  if (ref.is_lab()) {
    return "lab";
  }
  if (ref.is_trend()) {
    return "trend";
  }
  if (configured != nullptr) {
    for (const RuleClause& clause : configured->clauses) {
      if (clause.text == rule) {
        return clause.ideal ? "ideal" : "target";
      }
    }
  }
  return ref.source == RuleRef::Source::clause && ref.ideal ? "ideal" : "target";
}

}  // namespace labwatch::clinical
