// SPDX-License-Identifier: Apache-2.0
// normalize: values, ranges and times as labs print them, and LabReports to canonical results.
#include "clinical/normalize.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "clinical/lab_range.hpp"
#include "clinical/reconcile.hpp"
#include "clinical/result_status.hpp"
#include "clinical/timezone.hpp"
#include "clinical/units.hpp"
#include "parsers/text.hpp"

namespace labwatch::clinical {

namespace {

using parsers::DateTime;
using parsers::Observation;
using parsers::Order;
using parsers::Refusal;
using parsers::SourcePos;

constexpr std::int64_t kSecondsPerDay = 86'400;
constexpr int kMaxOffsetMinutes = 18 * 60;    // ISO 8601 / HL7 offsets never go beyond +-18:00
constexpr std::size_t kMaxExcerptBytes = 40;  // unit text quoted in a refusal detail
constexpr std::size_t kReservedResults = 64;  // results of one report reserved at once
// log10 of a resolution such as 0.1 is -0.9999999999999999 in binary: not one decimal more.
constexpr double kDecimalsSlack = 1e-9;

using parsers::is_blank;
using parsers::is_digit;
using parsers::trim;
using parsers::upper_ascii;

// Seconds since the epoch of a wall-clock reading taken as if it were UTC. nullopt when the fields
// do not name a real date and time. A leap second (:60) rolls into the next minute.
std::optional<std::int64_t> wall_seconds(const DateTime& t) noexcept {
  if (t.empty() || t.year < 1 || t.year > 9999 || t.month < 1 || t.month > 12 || t.day < 1 ||
      t.day > 31 || t.hour < 0 || t.hour > 23 || t.minute < 0 || t.minute > 59 || t.second < 0 ||
      t.second > 60) {
    return std::nullopt;
  }
  const date::year_month_day ymd{date::year{t.year}, date::month{static_cast<unsigned>(t.month)},
                                 date::day{static_cast<unsigned>(t.day)}};
  if (!ymd.ok()) {
    return std::nullopt;  // 2025-02-30
  }
  const std::int64_t days = date::sys_days{ymd}.time_since_epoch().count();
  return days * kSecondsPerDay + std::int64_t{t.hour} * 3600 + std::int64_t{t.minute} * 60 +
         t.second;
}

bool offset_in_range(const DateTime& t) noexcept {
  return !t.has_offset ||
         (t.offset_minutes >= -kMaxOffsetMinutes && t.offset_minutes <= kMaxOffsetMinutes);
}

// The IANA zone of that name, or nullptr when the name is empty or unknown to the system tzdata.
const date::time_zone* find_zone(std::string_view name) noexcept {
  if (name.empty()) {
    return nullptr;
  }
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    // Unknown names throw std::runtime_error; so does a missing /usr/share/zoneinfo.
    return nullptr;
  }
}

// The raw text of a value for a refusal detail: at most kMaxExcerptBytes, cut at a UTF-8 boundary.
std::string excerpt(std::string_view text) {
  if (text.size() <= kMaxExcerptBytes) {
    return std::string(text);
  }
  std::size_t size = kMaxExcerptBytes;
  while (size > 0 && (static_cast<unsigned char>(text[size]) & 0xC0U) == 0x80U) {
    --size;  // text[size] continues a multi-byte character: cut before that character
  }
  return std::string(text.substr(0, size)) + "...";
}

std::string two_digits(int n) {
  return {static_cast<char>('0' + n / 10 % 10), static_cast<char>('0' + n % 10)};
}

// YYYY-MM-DD for a real date with at least day precision, else "".
std::string format_birth_date(const DateTime& t) {
  if (t.precision < DateTime::Precision::day || !wall_seconds(t)) {
    return {};
  }
  return two_digits(t.year / 100) + two_digits(t.year % 100) + '-' + two_digits(t.month) + '-' +
         two_digits(t.day);
}

char fold_sex(std::string_view sex) {
  const std::string folded = fold_name(sex);
  // German exports write W (weiblich) for female; "männlich" may come with either case of the
  // umlaut, which fold_name (ASCII only) leaves as it is.
  for (const std::string_view female : {"f", "w", "female", "weiblich"}) {
    if (folded == female) {
      return 'F';
    }
  }
  for (const std::string_view male :
       {"m", "male", "m\xC3\xA4nnlich", "m\xC3\x84nnlich", "maennlich"}) {
    if (folded == male) {
      return 'M';
    }
  }
  return 'U';
}

// PID-3: the repetition typed MR (medical record number), else the first one with an id.
const parsers::Identifier* pick_identifier(const parsers::Patient& patient) {
  const parsers::Identifier* first = nullptr;
  for (const parsers::Identifier& identifier : patient.identifiers) {
    if (trim(identifier.id).empty()) {
      continue;
    }
    if (fold_name(identifier.type) == "mr") {
      return &identifier;
    }
    if (first == nullptr) {
      first = &identifier;
    }
  }
  return first;
}

// Why: many senders fill CX.4 (assigning authority) with a label that names no authority: the
// identifier type ("MR", "MRN", "PI"), a placeholder ("1", "LOCAL", "UNK") or nothing. Two labs'
// "MRN|123" are different patients, so such a label is scoped by the sender (see normalize).
bool is_generic_authority(std::string_view authority) {
  if (authority.empty()) {
    return true;
  }
  if (authority.size() <= 3 &&
      std::all_of(authority.begin(), authority.end(), [](char c) { return is_digit(c); })) {
    return true;  // "1", "01", "999": a slot number, not a namespace
  }
  const std::string folded = fold_name(authority);
  // HL7 table 0203 identifier types that senders put in CX.4, and placeholders.
  constexpr std::array<std::string_view, 18> kGeneric = {
      "mr", "mrn",     "pi",  "pn",    "pt",   "pid",     "id",   "an",   "ani",
      "ri", "unknown", "unk", "local", "none", "default", "hosp", "mrno", "patid"};
  return std::find(kGeneric.begin(), kGeneric.end(), folded) != kGeneric.end();
}

bool is_loinc_system(std::string_view system) {
  const std::string folded = fold_name(system);
  return folded == "ln" || folded == "loinc";
}

struct Mapping {
  const Analyte* analyte = nullptr;
  std::string code;  // the code that mapped; empty when the name did
};

// OBX-3 to an analyte: the LOINC of the primary coding, then of the alternate coding (a code counts
// when it is one of the catalogue's LOINC codes: CSV exports send no coding system), then a
// configured local code, then the test name. An observation that carries an explicit LOINC (system
// LN) outside the catalogue is a different test (8245-3 whole-blood zinc is not serum zinc), so its
// name is not tried.
Mapping map_observation(const Observation& obs, const AnalyteCatalogue& catalogue) {
  const parsers::Coded& coded = obs.code;
  const std::string_view primary = trim(coded.code);
  const std::string_view alternate = trim(coded.alt_code);
  for (const std::string_view code : {primary, alternate}) {
    if (const Analyte* analyte = code.empty() ? nullptr : catalogue.by_loinc(code)) {
      return {analyte, std::string(code)};
    }
  }
  const bool primary_is_loinc = is_loinc_system(coded.system);
  const bool alternate_is_loinc = is_loinc_system(coded.alt_system);
  for (const auto& [code, is_loinc] :
       {std::pair{primary, primary_is_loinc}, std::pair{alternate, alternate_is_loinc}}) {
    if (const Analyte* analyte =
            (code.empty() || is_loinc) ? nullptr : catalogue.by_local_code(code)) {
      return {analyte, std::string(code)};
    }
  }
  if ((primary_is_loinc && !primary.empty()) || (alternate_is_loinc && !alternate.empty())) {
    return {};
  }
  for (const std::string_view name :
       {trim(obs.test_name), trim(coded.text), trim(coded.alt_text)}) {
    if (const Analyte* analyte = name.empty() ? nullptr : catalogue.by_name(name)) {
      return {analyte, {}};
    }
  }
  return {};
}

// The key under which an unmapped observation is counted: its LOINC, else its local code, else
// its name.
std::string unmapped_key(const Observation& obs) {
  const parsers::Coded& coded = obs.code;
  if (is_loinc_system(coded.system) && !trim(coded.code).empty()) {
    return std::string(trim(coded.code));
  }
  if (is_loinc_system(coded.alt_system) && !trim(coded.alt_code).empty()) {
    return std::string(trim(coded.alt_code));
  }
  for (const std::string_view text : {trim(coded.code), trim(coded.alt_code), trim(obs.test_name),
                                      trim(coded.text), trim(coded.alt_text)}) {
    if (!text.empty()) {
      return std::string(text);
    }
  }
  return "(no code or name)";
}

// How a refusal detail names the fields of each format.
struct FieldNames {
  std::string_view value;
  std::string_view unit;
  std::string_view range;
  std::string_view flag;
  std::string_view collected;  // the order's collection time
  std::string_view observed;   // the observation's own time
  std::string_view specimen;   // the specimen's collection time
  std::string_view no_time;    // all are empty
};
constexpr FieldNames kHl7Fields{"OBX-5", "OBX-6",  "OBX-7",  "OBX-8",
                                "OBR-7", "OBX-14", "SPM-17", "OBR-7, OBX-14 and SPM-17 are empty"};
constexpr FieldNames kCsvFields{"the value",           "the unit",
                                "the reference range", "the flag",
                                "the collection time", "the collection time",
                                "the collection time", "the collection time is empty"};

// `t` as its sender writes dates: NN/NN/YYYY in <source date-order> (parsers::in_date_order).
// Unreadable when it is no date in that order; `ambiguous` set when no order is known and its
// readings are two different days.
DateTime in_source_order(const DateTime& t, parsers::DateOrder order, bool* ambiguous = nullptr) {
  if (t.slashed == parsers::SlashedDate::none) {
    return t;
  }
  parsers::Expected<DateTime, parsers::DateErrc> read = parsers::in_date_order(t, order);
  if (read) {
    return *read;
  }
  if (ambiguous != nullptr) {
    *ambiguous = read.error() == parsers::DateErrc::ambiguous;
  }
  DateTime unreadable;
  unreadable.unreadable = true;
  return unreadable;
}

// A time and the field it came from, for refusal details.
struct ChosenTime {
  const DateTime& time;
  std::string_view field;
};

// Why: the specimen collection time is what a result is filed and trended under. OBR-7 says it;
// OBX-14 (the observation's own time, often the time of analysis) stands in only when OBR-7 is
// empty, and SPM-17 (2.5+, the specimen's collection start) when both are. OBR-6, the time the
// test was requested, is never a collection time. A field that holds text that is no time is
// refused rather than passed over for the next one, which may mean something else.
ChosenTime collection_time(const Order& order, const Observation& obs, const FieldNames& fields) {
  for (const ChosenTime& choice : {ChosenTime{order.collected_at, fields.collected},
                                   ChosenTime{obs.observed_at, fields.observed},
                                   ChosenTime{order.specimen_collected_at, fields.specimen}}) {
    if (!choice.time.empty() || choice.time.unreadable) {
      return choice;
    }
  }
  return {order.collected_at, fields.collected};
}

// Everything about one report that its observations share.
struct Context {
  const AnalyteCatalogue& catalogue;
  const SourceContext& source;
  const FieldNames& fields;
  NormalizedReport& out;
  parsers::DecimalMark mark = parsers::DecimalMark::unknown;  // the source's, else the evidence's
  bool point_is_standard = false;  // HL7 NM is defined with a decimal point; a CSV has no standard
};

// A refusal of one value, before it is given its place and identity.
struct ValueRefusal {
  const SourcePos* where = nullptr;
  parsers::RefusalReason reason;
  std::string detail;
};

bool nearly_equal(double x, double y) noexcept {
  constexpr double kRelativeTolerance = 1e-9;
  return std::fabs(x - y) <= kRelativeTolerance * std::max(std::fabs(x), std::fabs(y));
}

// The printed range of `obs`, in the canonical unit, when it may be used for this value: read in
// the shapes labs print, in the value's unit (a range printed in another unit is not scaled:
// which of the two units is wrong cannot be known), and of a magnitude that fits the analyte
// (RBC magnesium 2.3 mmol/L beside "4.2-6.8" is a range in mg/dL, whatever the field says).
void take_range(const Observation& obs, const Analyte& analyte, double factor, const Context& ctx,
                NormalizedResult& result) {
  const RangeReading reading =
      read_printed_range(obs.reference_range, ctx.mark, ctx.point_is_standard, ctx.out.patient.sex);
  auto unusable = [&](RangeProblem why) { result.range_problem = why; };
  if (!reading.range) {
    unusable(reading.problem);
    return;
  }
  const PrintedRange& printed = *reading.range;
  if (!trim(printed.unit).empty()) {
    const std::optional<double> range_factor = factor_to_canonical(analyte, printed.unit);
    if (!range_factor || !nearly_equal(*range_factor, factor)) {
      unusable(RangeProblem::unit_mismatch);
      return;
    }
  }
  const std::optional<double> low =
      printed.low ? std::optional<double>(*printed.low * factor) : std::nullopt;
  const std::optional<double> high =
      printed.high ? std::optional<double>(*printed.high * factor) : std::nullopt;
  // Ranges of one analyte differ from lab to lab, but they overlap: a printed range that lies
  // wholly beside the catalogue's typical one, or beyond what is possible, is in another unit.
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  const double lo = low.value_or(-kInfinity);
  const double hi = high.value_or(kInfinity);
  const bool beside_catalogue =
      (analyte.ref_low || analyte.ref_high) &&
      (hi < analyte.ref_low.value_or(-kInfinity) || lo > analyte.ref_high.value_or(kInfinity));
  const bool impossible =
      (analyte.plausible_high &&
       ((low && *low > *analyte.plausible_high) || (high && *high > *analyte.plausible_high))) ||
      (low && *low < analyte.plausible_low.value_or(0.0) && !nearly_equal(*low, 0.0));
  if (beside_catalogue || impossible) {
    unusable(RangeProblem::does_not_fit);
    return;
  }
  result.ref_low = low;
  result.ref_high = high;
  result.range_problem = RangeProblem::none;
}

// A plain N on a value that lies wholly outside the printed range: the lab may judge by a range
// it did not print (age, sex), so the result is stored, but someone should look: a warning (a
// place and a reason, never the value) for the log and `explain`. Compared as printed, like the
// lab's range in clinical::evaluate.
void note_normal_flag_outside(const Observation& obs, const Context& ctx,
                              const NormalizedResult& result) {
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  const std::string_view comparator = result.comparator;
  // The value as printed: a point, or a censored value's half line ("<5" is below 5).
  const double lo = comparator.starts_with('<') ? -kInfinity : result.value;
  const double hi = comparator.starts_with('>') ? kInfinity : result.value;
  const bool below =
      result.ref_low && ((hi < *result.ref_low && !nearly_equal(hi, *result.ref_low)) ||
                         (comparator == "<" && nearly_equal(hi, *result.ref_low)));
  const bool above =
      result.ref_high && ((lo > *result.ref_high && !nearly_equal(lo, *result.ref_high)) ||
                          (comparator == ">" && nearly_equal(lo, *result.ref_high)));
  if (!below && !above) {
    return;
  }
  const FieldNames& fields = ctx.fields;
  SourcePos where = obs.where;
  if (&fields == &kHl7Fields) {
    where.field = 8;  // OBX-8
  } else {
    where.field = -1;  // the CSV flag column: named in the detail
    where.column.clear();
  }
  ctx.out.warnings.push_back({std::string(kFlagDisagrees),
                              std::string(fields.flag) + " 'N' says normal, but " +
                                  std::string(fields.value) + " lies " +
                                  (below ? "below" : "above") + " " + std::string(fields.range) +
                                  "; stored (the lab may judge by a range it did not print)",
                              std::move(where)});
}

// Reads the value of `obs` into `result` (number, comparator, canonical unit, precision, range),
// or says why it is refused. The lab's flag is a second witness: when it points the other way
// from the value against the lab's own range, one of the two was misread, and neither is stored.
std::optional<ValueRefusal> read_value(const Observation& obs, const Analyte& analyte,
                                       const Context& ctx, NormalizedResult& result) {
  const FieldNames& fields = ctx.fields;
  // A value is patient data, and a refusal reaches the log and the reason file: a detail names
  // the field, never what it holds (the refusal's position leads to it in the file).
  auto refuse = [&](parsers::RefusalReason reason, std::string detail) {
    return ValueRefusal{&obs.where, reason, std::move(detail)};
  };
  std::string_view text = trim(obs.value);
  const bool empty = text.empty();
  std::string comparator(take_comparator(text));
  if (!obs.comparator.empty()) {
    // SN: the comparator came in its own component; "=" is no comparator at all.
    const std::string_view sn = trim(obs.comparator);
    const bool known = sn == "<" || sn == ">" || sn == "<=" || sn == ">=" || sn == "=";
    if (!known || !comparator.empty()) {
      return refuse(parsers::RefusalReason::non_numeric_value,
                    std::string(fields.value) + " is not a number");
    }
    comparator = sn == "=" ? std::string() : std::string(sn);
  }
  const parsers::NumberReading reading =
      parsers::read_lab_number(text, ctx.mark, ctx.point_is_standard);
  if (!reading.number) {
    if (reading.problem == parsers::NumberProblem::ambiguous) {
      return refuse(parsers::RefusalReason::ambiguous_number,
                    std::string(fields.value) +
                        " may be read with a decimal comma or a thousands separator, and neither "
                        "the source (<source decimal=...>) nor the file's other numbers say which");
    }
    return refuse(parsers::RefusalReason::non_numeric_value,
                  std::string(fields.value) + (empty ? " is empty" : " is not a number"));
  }
  // Most labs print the canonical unit itself. factor_to_canonical would fold both spellings
  // (and every alias) to find that out; a non-blank unit equal byte for byte folds the same.
  const std::optional<double> factor =
      obs.units == analyte.canonical_unit && !trim(obs.units).empty()
          ? std::optional<double>(1.0)
          : factor_to_canonical(analyte, obs.units);
  if (!factor) {
    const std::string_view unit = trim(obs.units);
    return ValueRefusal{&obs.units_where, parsers::RefusalReason::unknown_unit,
                        (unit.empty() ? std::string(fields.unit) + " is empty"
                                      : std::string(fields.unit) + " '" + excerpt(unit) + "'" +
                                            " is not a known unit") +
                            " for " + analyte.key + " (canonical " + analyte.canonical_unit + ")"};
  }
  // The exact product, never rounded: rounding is for display.
  result.value = reading.number->value * *factor;
  result.comparator = std::move(comparator);
  if (result.value < analyte.plausible_low.value_or(0.0)) {
    return refuse(parsers::RefusalReason::implausible_value,
                  std::string(fields.value) + " is below what is possible for " + analyte.key);
  }
  if (analyte.plausible_high && result.value > *analyte.plausible_high) {
    return refuse(parsers::RefusalReason::implausible_value,
                  std::string(fields.value) + " is above what is possible for " + analyte.key);
  }
  // One unit of the last digit printed, in the canonical unit: what the lab vouches for.
  const double resolution = std::pow(10.0, -reading.number->decimals) * *factor;
  result.tolerance = *factor == 1.0 ? 0.0 : resolution / 2.0;
  result.shown_decimals =
      std::max(0, static_cast<int>(std::ceil(-std::log10(resolution) - kDecimalsSlack)));
  take_range(obs, analyte, *factor, ctx, result);

  const LabFlag flag = read_lab_flag(obs.abnormal_flags);
  if ((flag == LabFlag::high && result.ref_low) || (flag == LabFlag::low && result.ref_high)) {
    constexpr double kInfinity = std::numeric_limits<double>::infinity();
    const bool censored_low = !result.comparator.empty() && result.comparator.front() == '<';
    const bool censored_high = !result.comparator.empty() && result.comparator.front() == '>';
    // As printed: the range came in the value's unit, converted by the same factor.
    const double lo = censored_low ? -kInfinity : result.value;
    const double hi = censored_high ? kInfinity : result.value;
    const bool wrong_way = flag == LabFlag::high
                               ? hi < *result.ref_low && !nearly_equal(hi, *result.ref_low)
                               : lo > *result.ref_high && !nearly_equal(lo, *result.ref_high);
    if (wrong_way) {
      ValueRefusal refusal =
          refuse(parsers::RefusalReason::flag_mismatch,
                 std::string(fields.flag) + " '" + excerpt(trim(obs.abnormal_flags)) + "' says " +
                     std::string(to_string(flag)) + ", but " + std::string(fields.value) +
                     " lies " + (flag == LabFlag::high ? "below" : "above") + " " +
                     std::string(fields.range) + ": one of them was misread");
      return refusal;
    }
  }
  if (flag == LabFlag::normal) {
    note_normal_flag_outside(obs, ctx, result);
  }
  return std::nullopt;
}

// True when `text` is one number, with or without a comparator ("<5", "1,050"): a value, not a
// comment (an ambiguous number is still a number, refused later for what it is).
bool holds_one_number(std::string_view text) noexcept {
  text = trim(text);
  take_comparator(text);
  const parsers::NumberReading reading =
      parsers::read_lab_number(text, parsers::DecimalMark::unknown, true);
  return reading.number.has_value() || reading.problem == parsers::NumberProblem::ambiguous;
}

// Why an observation line is no result, when it is none: its status says so (I, N, O), it is a
// text line (TX, FT) that holds no number (a comment such as "(Ref Range: 4 k/uL)"), or its value
// (for a coded value: its code or text, "TNP^Test not performed^L") says that the test was not
// performed. A withdrawal (X, W, D) needs no value, so it is never
// skipped for what its value says.
std::optional<SkipReason> skip_reason(const Observation& obs, const StatusMeaning& meaning) {
  if (meaning.effect == StatusEffect::skip) {
    return meaning.skip;
  }
  if (meaning.effect == StatusEffect::withdraw) {
    return std::nullopt;
  }
  const std::string_view raw = trim(obs.value);
  if (says_not_performed(raw) || (is_coded_type(obs.value_type) && coded_says_not_performed(raw))) {
    return SkipReason::not_performed;
  }
  if (is_text_type(obs.value_type) && !holds_one_number(raw)) {
    return SkipReason::comment;
  }
  return std::nullopt;
}

void add_observation(const Order& order, const Observation& obs, Context& ctx) {
  const StatusMeaning meaning = status_meaning(obs.result_status);
  const std::optional<SkipReason> skip = skip_reason(obs, meaning);
  const Mapping mapping = map_observation(obs, ctx.catalogue);
  if (mapping.analyte == nullptr && !skip) {
    UnmappedLine line;
    line.code = unmapped_key(obs);
    for (const std::string_view name :
         {trim(obs.test_name), trim(obs.code.text), trim(obs.code.alt_text)}) {
      if (!name.empty()) {
        line.name = std::string(name);
        break;
      }
    }
    line.unit = std::string(trim(obs.units));
    line.where = obs.where;
    ++ctx.out.unmapped[line.code];
    ctx.out.unmapped_lines.push_back(std::move(line));
    return;
  }

  const ChosenTime chosen = collection_time(order, obs, ctx.fields);
  bool ambiguous_date = false;
  const DateTime time = in_source_order(chosen.time, ctx.source.date_order, &ambiguous_date);
  const std::string_view time_field = chosen.field;

  if (skip) {
    SkippedLine line;
    line.reason = *skip;
    if (mapping.analyte != nullptr) {
      line.analyte = mapping.analyte->key;
    }
    line.code = mapping.code.empty() ? unmapped_key(obs) : mapping.code;
    if (!time.empty()) {
      line.collected_at = to_utc(time, ctx.source.timezone);
    }
    line.order_id = order.filler_order_number;
    line.raw_value = obs.comparator + obs.value;
    line.where = obs.where;
    ctx.out.skipped.push_back(std::move(line));
    return;
  }
  const Analyte& analyte = *mapping.analyte;

  // A refusal points at the field it is about: the unit's for unit refusals, else the value's.
  auto refuse_at = [&](const SourcePos& where, parsers::RefusalReason reason, std::string detail) {
    Refusal refusal;
    refusal.reason = reason;
    refusal.detail = std::move(detail);
    refusal.where = where;
    refusal.patient_key = ctx.out.patient.patient_key();
    refusal.code = mapping.code.empty() ? std::string(trim(obs.code.code)) : mapping.code;
    refusal.analyte = analyte.key;
    refusal.collected_at = time;
    refusal.result_status = obs.result_status;
    ctx.out.refusals.push_back(std::move(refusal));
  };
  auto refuse = [&](parsers::RefusalReason reason, std::string detail) {
    refuse_at(obs.where, reason, std::move(detail));
  };

  NormalizedResult result;
  result.analyte = analyte.key;
  result.unit = analyte.canonical_unit;
  result.raw_value = obs.comparator + obs.value;
  result.raw_unit = obs.units;
  result.raw_range = obs.reference_range;
  result.flags = obs.abnormal_flags;
  result.status = meaning.status;
  result.code = mapping.code;
  result.order_id = order.filler_order_number;
  result.parent_order_id = order.parent_filler_id;
  // U without a value of its own: it only makes the stored preliminary final. With a value, that
  // value is the final version.
  result.promote_only = meaning.effect == StatusEffect::promote && trim(obs.value).empty();
  result.where = obs.where;
  for (const std::string& note : obs.notes) {
    if (!result.notes.empty()) {
      result.notes.push_back('\n');
    }
    result.notes += note;
  }

  // A cancelled result carries no value: it only withdraws earlier versions, so it needs no
  // number and no unit, only the key it withdraws (analyte, collection time).
  if (result.status != ResultStatus::cancelled && !result.promote_only) {
    if (auto refusal = read_value(obs, analyte, ctx, result)) {
      refuse_at(*refusal->where, refusal->reason, std::move(refusal->detail));
      return;
    }
  }

  if (ambiguous_date) {
    refuse(parsers::RefusalReason::ambiguous_date,
           std::string(time_field) +
               " is a date NN/NN/YYYY that reads as two different days, and the file's "
               "<source> sets no date-order=\"mdy|dmy\"");
    return;
  }
  if (time.unreadable && chosen.time.slashed != parsers::SlashedDate::none) {
    refuse(parsers::RefusalReason::invalid_time,
           std::string(time_field) + " is no real date in the <source> date-order \"" +
               (ctx.source.date_order == parsers::DateOrder::mdy ? "mdy" : "dmy") + "\"");
    return;
  }
  if (time.unreadable) {
    refuse(parsers::RefusalReason::invalid_time,
           &chosen.time == &order.specimen_collected_at
               ? std::string(time_field) +
                     " is not a date and time, or the order's SPM segments give "
                     "different ones"
               : std::string(time_field) + " is not a date and time");
    return;
  }
  if (time.empty()) {
    refuse(parsers::RefusalReason::missing_time,
           "no specimen collection time: " + std::string(ctx.fields.no_time));
    return;
  }
  const std::optional<UnixSeconds> utc = to_utc(time, ctx.source.timezone);
  if (!utc) {
    if (!wall_seconds(time) || !offset_in_range(time)) {
      refuse(parsers::RefusalReason::invalid_time,
             std::string(time_field) + " is not a real date and time");
    } else if (ctx.source.timezone.empty()) {
      refuse(parsers::RefusalReason::unknown_timezone,
             std::string(time_field) +
                 " has no UTC offset, and neither a <source> of the file nor "
                 "<intake default-timezone> names a timezone");
    } else {
      refuse(parsers::RefusalReason::unknown_timezone,
             std::string(time_field) + " has no UTC offset and the timezone '" +
                 ctx.source.timezone + "' is not a known IANA zone");
    }
    return;
  }
  result.collected_at = *utc;
  ctx.out.results.push_back(std::move(result));
}

// Why: some labs report 25-OH vitamin D3 (1989-3) as their only 25-OH vitamin D result, and it is
// then the patient's total (D2 is rarely present). Where the same draw has a real total, the D3
// fraction is only a part of it and must never replace it. So a fraction stands in for its total
// only when the report holds no total of the same collection time; across reports, storage applies
// clinical::plan_stand_in (the stand-in says which fraction it is: NormalizedResult::fraction).
void take_fractions_for_totals(std::vector<NormalizedResult>& results) {
  for (const StandInPair& stand_in : stand_in_pairs()) {
    for (NormalizedResult& result : results) {
      if (result.analyte != stand_in.fraction) {
        continue;
      }
      const bool has_total =
          std::any_of(results.begin(), results.end(), [&](const NormalizedResult& other) {
            return other.analyte == stand_in.total && other.collected_at == result.collected_at;
          });
      if (!has_total) {
        result.fraction = std::move(result.analyte);
        result.analyte = stand_in.total;
      }
    }
  }
}

}  // namespace

std::optional<double> parse_decimal(std::string_view text, bool decimal_comma) noexcept {
  // A cleaned copy that from_chars reads exactly: '-'?, digits, '.'?, digits. Lab values are
  // short; a text longer than the buffer is not a value.
  std::array<char, 64> buffer{};
  std::size_t size = 0;
  std::size_t i = 0;
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
    if (text.front() == '-') {
      buffer[size++] = '-';
    }
    i = 1;
  }
  bool separator = false;
  bool digits = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (is_digit(c)) {
      digits = true;
    } else if (!separator && (c == '.' || (decimal_comma && c == ','))) {
      separator = true;
      c = '.';
    } else {
      return std::nullopt;  // a second separator, a space, an exponent, a letter
    }
    if (size == buffer.size()) {
      return std::nullopt;
    }
    buffer[size++] = c;
  }
  if (!digits) {
    return std::nullopt;
  }
  double value = 0;
  const char* const end = buffer.data() + size;
  const auto [stop, error] = std::from_chars(buffer.data(), end, value, std::chars_format::fixed);
  if (error != std::errc{} || stop != end) {
    return std::nullopt;
  }
  return value;
}

std::optional<UnixSeconds> to_utc(const DateTime& t, std::string_view timezone) {
  const std::optional<std::int64_t> wall = wall_seconds(t);
  if (!wall) {
    return std::nullopt;
  }
  if (!offset_in_range(t)) {
    return std::nullopt;
  }
  if (t.has_offset) {
    return *wall - std::int64_t{t.offset_minutes} * 60;
  }
  const date::time_zone* zone = find_zone(timezone);
  if (zone == nullptr) {
    return std::nullopt;
  }
  // choose::earliest, as std::chrono defines it: a wall time that happens twice (clocks set back)
  // is its first occurrence; one that never happens (clocks set forward) is the instant of the
  // change. Neither throws, and later wall times never map to earlier instants.
  const date::local_seconds local{std::chrono::seconds{*wall}};
  return zone->to_sys(local, date::choose::earliest).time_since_epoch().count();
}

parsers::Expected<NormalizedReport, Refusal> normalize(const parsers::LabReport& report,
                                                       const AnalyteCatalogue& catalogue,
                                                       const SourceContext& source) {
  const bool csv = report.format == parsers::SourceFormat::csv;
  auto refuse_report = [&](parsers::RefusalReason reason, std::string detail) {
    Refusal refusal;
    refusal.reason = reason;
    refusal.detail = std::move(detail);
    refusal.where = report.where;
    return parsers::unexpected(std::move(refusal));
  };

  NormalizedReport out;
  const parsers::Identifier* identifier = pick_identifier(report.patient);
  if (identifier == nullptr) {
    return refuse_report(parsers::RefusalReason::missing_patient_id,
                         csv ? "the patient id is empty" : "PID-3 holds no patient identifier");
  }
  PersonIdentity& person = out.patient;
  person.mrn = trim(identifier->id);
  if (csv) {
    // A CSV row carries a bare id: whose id it is comes only from the config's <source>.
    if (source.authority.empty()) {
      return refuse_report(parsers::RefusalReason::unknown_source,
                           "the file matched no <source>, so its patient ids have no assigning "
                           "authority");
    }
    person.authority = source.authority;
  } else {
    // CX.4 when it names an authority. A generic one (empty, "MR", "MRN", "1", ...) is scoped by
    // the sender: the <source> authority, else MSH-4, else the <source> facility. An empty CX.4
    // becomes that scope ("LABX"), a generic label the scope and the label ("LABX:MR"), so that
    // another sender's "MR" ids never meet these.
    const std::string_view cx4 = trim(identifier->authority);
    if (!is_generic_authority(cx4)) {
      person.authority = cx4;
    } else {
      for (const std::string_view scope :
           {trim(source.authority), trim(report.sending_facility), trim(source.facility)}) {
        if (!scope.empty()) {
          person.authority = scope;
          break;
        }
      }
      if (person.authority.empty()) {
        return refuse_report(parsers::RefusalReason::missing_authority,
                             cx4.empty() ? "PID-3 has no assigning authority (CX.4), MSH-4 is "
                                           "empty and the file matched no <source>"
                                         : "PID-3's assigning authority (CX.4) is a generic "
                                           "label, MSH-4 is empty and the file matched no "
                                           "<source>");
      }
      if (!cx4.empty()) {
        person.authority += ':' + upper_ascii(cx4);
      }
    }
  }
  person.family = trim(report.patient.family);
  const std::string_view given = trim(report.patient.given);
  person.given = given.substr(0, std::min(given.find(' '), given.find('\t')));
  person.birth_date =
      format_birth_date(in_source_order(report.patient.birth_date, source.date_order));
  person.sex = fold_sex(report.patient.sex);

  out.facility = source.facility.empty() ? report.sending_facility : source.facility;
  out.control_id = report.control_id;
  // Versions are ordered by MSH-7; without it by the first OBR-22 (results report/status change
  // time), else by arrival: never as time 0, which would lose to every version it replaces.
  std::optional<UnixSeconds> message_time =
      to_utc(in_source_order(report.message_time, source.date_order), source.timezone);
  for (const Order& order : report.orders) {
    if (message_time) {
      break;
    }
    message_time =
        to_utc(in_source_order(order.status_changed_at, source.date_order), source.timezone);
  }
  out.message_time = message_time.value_or(0);
  out.message_time_from_arrival = !csv && !message_time;
  out.raw_digest = report.raw_digest;
  out.where = report.where;
  out.warnings = report.warnings;
  for (const Order& order : report.orders) {
    if (!order.ordering_provider_id.empty() || !order.ordering_provider_name.empty()) {
      out.ordering_provider_id = order.ordering_provider_id;
      out.ordering_provider_name = order.ordering_provider_name;
      break;
    }
  }

  std::size_t observations = 0;
  for (const Order& order : report.orders) {
    observations += order.observations.size();
  }
  // Room for every result of a usual report up front, so that none is moved as the vector grows;
  // capped, as a hostile message may hold many observations outside the catalogue.
  out.results.reserve(std::min<std::size_t>(observations, kReservedResults));
  Context ctx{catalogue, source, csv ? kCsvFields : kHl7Fields, out};
  ctx.point_is_standard = !csv;
  ctx.mark = source.decimal;
  if (ctx.mark == parsers::DecimalMark::unknown) {
    // The source does not say how it writes fractions: the numbers of the file (CSV) or of the
    // message (HL7) that can only be read one way do ("45,2", "13,0-150,0", "45.2").
    parsers::MarkEvidence evidence = report.file_numbers;
    if (!csv) {
      for (const Order& order : report.orders) {
        for (const Observation& obs : order.observations) {
          if (obs.value_type != "TX" && obs.value_type != "FT") {
            evidence.add(obs.value);
          }
          evidence.add(obs.reference_range);
        }
      }
    }
    ctx.mark = evidence.mark();
  }
  for (const Order& order : report.orders) {
    for (const Observation& obs : order.observations) {
      add_observation(order, obs, ctx);
    }
  }
  take_fractions_for_totals(out.results);
  return out;
}

bool is_valid_timezone(std::string_view name) noexcept { return find_zone(name) != nullptr; }

std::string local_time_text(std::int64_t t, std::string_view name) {
  const date::sys_seconds at{std::chrono::seconds{t}};
  const date::time_zone* zone = nullptr;
  try {
    zone = name.empty() ? date::current_zone() : find_zone(name);
  } catch (const std::exception&) {
    zone = nullptr;  // no /etc/localtime, or no tz database: UTC, said so
  }
  if (zone == nullptr) {
    return date::format("%Y-%m-%d %H:%M UTC", at);
  }
  return date::format("%Y-%m-%d %H:%M %Z", date::make_zoned(zone, at));
}

}  // namespace labwatch::clinical
