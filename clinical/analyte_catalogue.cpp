// SPDX-License-Identifier: Apache-2.0
// The analyte catalogue: loading the analytes.csv format, merging config extensions, lookups.
#include "clinical/analyte_catalogue.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clinical/normalize.hpp"
#include "clinical/rules.hpp"
#include "parsers/text.hpp"

namespace labwatch::clinical {

// Defined in the file generated from analytes.csv (embed_catalogue.cmake).
std::string_view builtin_catalogue_csv() noexcept;

namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// The columns of the analytes.csv format; a file may order them freely and add others.
enum class Column : std::size_t {
  key,
  display_name,
  specimen,
  loinc_codes,
  canonical_unit,
  unit_aliases,
  conversions,
  ref_low,
  ref_high,
  optimal_rule,
  plausible_low,  // optional, like every column after it
  plausible_high,
  trend_rule,
};
constexpr std::size_t kColumnCount = 13;
constexpr std::size_t kRequiredColumns = 10;
constexpr std::size_t at(Column column) noexcept { return static_cast<std::size_t>(column); }
constexpr std::array<std::string_view, kColumnCount> kColumnNames = {
    "key",           "display_name",   "specimen",   "loinc_codes", "canonical_unit",
    "unit_aliases",  "conversions",    "ref_low",    "ref_high",    "optimal_rule",
    "plausible_low", "plausible_high", "trend_rule",
};
constexpr auto kAbsent = static_cast<std::size_t>(-1);

struct Record {
  std::vector<std::string> fields;
  int line = 0;  // 1-based line where the record starts
};

using parsers::is_blank;
using parsers::trim;

// Joins the parts of an error message in one buffer.
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::string text;
  (text.append(parts), ...);
  return text;
}

// Splits the text into records. The delimiter is always ',' (the format is ours, so nothing is
// sniffed); a field may be quoted, with "" for a quote and line breaks inside. LF or CRLF.
parsers::Expected<std::vector<Record>, std::string> tokenize(std::string_view text) {
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
    text.remove_prefix(kUtf8Bom.size());
  }
  std::vector<Record> records;
  Record record;
  std::string field;
  bool quoted = false;
  bool field_was_quoted = false;
  int line = 1;
  record.line = 1;
  auto end_record = [&] {
    record.fields.push_back(std::move(field));
    field.clear();
    field_was_quoted = false;
    const bool blank = record.fields.size() == 1 && trim(record.fields.front()).empty();
    if (!blank) {
      records.push_back(std::move(record));
    }
    record = Record{};
    record.line = line;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') {
          ++line;
        }
        field.push_back(c);
      }
    } else if (c == '"' && field.empty() && !field_was_quoted) {
      quoted = true;
      field_was_quoted = true;
    } else if (c == ',') {
      record.fields.push_back(std::move(field));
      field.clear();
      field_was_quoted = false;
    } else if (c == '\n' || (c == '\r' && (i + 1 == text.size() || text[i + 1] == '\n'))) {
      if (c == '\r' && i + 1 < text.size()) {
        ++i;
      }
      ++line;
      end_record();
    } else {
      field.push_back(c);
    }
  }
  if (quoted) {
    return parsers::unexpected("line " + std::to_string(record.line) +
                               ": a quoted field is not closed before the end of the text");
  }
  end_record();
  return records;
}

// Splits "a;b;c" into its trimmed items; an empty text is no items. nullopt when an item is empty.
std::optional<std::vector<std::string>> split_list(std::string_view text) {
  std::vector<std::string> items;
  text = trim(text);
  if (text.empty()) {
    return items;
  }
  while (true) {
    const std::size_t semicolon = text.find(';');
    const std::string_view item = trim(text.substr(0, semicolon));
    if (item.empty()) {
      return std::nullopt;
    }
    items.emplace_back(item);
    if (semicolon == std::string_view::npos) {
      return items;
    }
    text.remove_prefix(semicolon + 1);
  }
}

template <class T>
void append_unique(std::vector<T>& to, const std::vector<T>& from) {
  for (const T& item : from) {
    if (std::find(to.begin(), to.end(), item) == to.end()) {
      to.push_back(item);
    }
  }
}

// Reads one data record into an Analyte; the error names the line and the column.
parsers::Expected<Analyte, std::string> read_analyte(
    const Record& record, const std::array<std::size_t, kColumnCount>& index) {
  auto fail = [&](Column column, const std::string& why) {
    return parsers::unexpected("line " + std::to_string(record.line) + ", column '" +
                               std::string(kColumnNames[at(column)]) + "': " + why);
  };
  auto field = [&](Column column) {
    const std::size_t i = index[at(column)];
    return i == kAbsent ? std::string_view{} : trim(record.fields[i]);
  };

  Analyte analyte;
  analyte.key = field(Column::key);
  if (analyte.key.empty()) {
    return fail(Column::key, "the key is empty");
  }
  analyte.display_name = field(Column::display_name);
  analyte.specimen = field(Column::specimen);
  analyte.canonical_unit = field(Column::canonical_unit);
  if (analyte.canonical_unit.empty()) {
    return fail(Column::canonical_unit, "the canonical unit is empty");
  }
  auto codes = split_list(field(Column::loinc_codes));
  if (!codes) {
    return fail(Column::loinc_codes, "an item of the ';'-separated list is empty");
  }
  analyte.loinc_codes = std::move(*codes);
  auto aliases = split_list(field(Column::unit_aliases));
  if (!aliases) {
    return fail(Column::unit_aliases, "an item of the ';'-separated list is empty");
  }
  analyte.unit_aliases = std::move(*aliases);

  auto factors = split_list(field(Column::conversions));
  if (!factors) {
    return fail(Column::conversions, "an item of the ';'-separated list is empty");
  }
  for (const std::string& item : *factors) {
    // "pmol/L=0.445038": the unit, '=', the factor that takes it to the canonical unit.
    const std::size_t equals = item.rfind('=');
    const std::string_view unit =
        trim(std::string_view(item).substr(0, equals == std::string::npos ? 0 : equals));
    if (unit.empty()) {
      return fail(Column::conversions, "'" + item + "' is not of the form unit=factor");
    }
    const auto factor = parse_decimal(trim(std::string_view(item).substr(equals + 1)), false);
    if (!factor || *factor <= 0) {
      return fail(Column::conversions, "the factor of '" + item + "' is not a positive number");
    }
    if (!analyte.conversions.emplace(unit, *factor).second) {
      return fail(Column::conversions, "the unit '" + std::string(unit) + "' is listed twice");
    }
  }

  // Optional numbers: the reference range and the plausible values, in the canonical unit.
  const std::pair<Column, std::optional<double>*> bounds[] = {
      {Column::ref_low, &analyte.ref_low},
      {Column::ref_high, &analyte.ref_high},
      {Column::plausible_low, &analyte.plausible_low},
      {Column::plausible_high, &analyte.plausible_high},
  };
  for (const auto& [column, bound] : bounds) {
    const std::string_view text = field(column);
    if (text.empty()) {
      continue;
    }
    *bound = parse_decimal(text, false);
    if (!*bound) {
      return fail(column, "'" + std::string(text) + "' is not a number");
    }
  }
  if (analyte.ref_low && analyte.ref_high && *analyte.ref_low > *analyte.ref_high) {
    return fail(Column::ref_high, "the high bound is below the low bound");
  }
  if (analyte.plausible_low && analyte.plausible_high &&
      *analyte.plausible_low >= *analyte.plausible_high) {
    return fail(Column::plausible_high, "the plausible high bound is not above the low bound");
  }

  analyte.optimal_rule = field(Column::optimal_rule);
  auto rule = parse_optimal_rule(analyte.optimal_rule);
  if (!rule) {
    return fail(Column::optimal_rule, rule.error());
  }
  analyte.trend_rule = field(Column::trend_rule);
  if (auto trends = parse_trend_rules(analyte.trend_rule); !trends) {
    return fail(Column::trend_rule, trends.error());
  }
  return analyte;
}

}  // namespace

std::string fold_name(std::string_view name) {
  std::string folded;
  folded.reserve(name.size());
  for (const char c : trim(name)) {
    if (is_blank(c)) {
      if (!folded.empty() && folded.back() != ' ') {
        folded.push_back(' ');
      }
    } else if (c >= 'A' && c <= 'Z') {
      folded.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      folded.push_back(c);
    }
  }
  return folded;
}

const AnalyteCatalogue& AnalyteCatalogue::builtin() {
  static const AnalyteCatalogue catalogue = [] {
    auto parsed = from_csv(builtin_catalogue_csv());
    if (!parsed) {
      // The embedded file is part of the build, not input: a failure here is a programmer error.
      throw std::logic_error("built-in analytes.csv: " + parsed.error());
    }
    return std::move(parsed).value();
  }();
  return catalogue;
}

parsers::Expected<AnalyteCatalogue, std::string> AnalyteCatalogue::from_csv(std::string_view csv) {
  auto records = tokenize(csv);
  if (!records) {
    return parsers::unexpected(records.error());
  }
  if (records->empty()) {
    return parsers::unexpected(std::string("the catalogue is empty: no header line"));
  }

  // The header names the columns; each known column must appear exactly once.
  const Record& header = records->front();
  std::array<std::size_t, kColumnCount> index{};
  index.fill(kAbsent);
  for (std::size_t i = 0; i < header.fields.size(); ++i) {
    const std::string_view name = trim(header.fields[i]);
    const auto* known = std::find(kColumnNames.begin(), kColumnNames.end(), name);
    if (known == kColumnNames.end()) {
      continue;
    }
    std::size_t& slot = index[static_cast<std::size_t>(known - kColumnNames.begin())];
    if (slot != kAbsent) {
      return parsers::unexpected("line " + std::to_string(header.line) + ": the column '" +
                                 std::string(name) + "' appears twice");
    }
    slot = i;
  }
  for (std::size_t c = 0; c < kRequiredColumns; ++c) {
    if (index[c] == kAbsent) {
      return parsers::unexpected("line " + std::to_string(header.line) + ": the header has no '" +
                                 std::string(kColumnNames[c]) + "' column");
    }
  }

  AnalyteCatalogue catalogue;
  std::map<std::string, int, std::less<>> key_lines;
  std::map<std::string, std::string, std::less<>> loinc_owner;
  for (std::size_t r = 1; r < records->size(); ++r) {
    const Record& record = (*records)[r];
    const std::string line = std::to_string(record.line);
    if (record.fields.size() != header.fields.size()) {
      return parsers::unexpected(concat("line ", line, ": ", std::to_string(record.fields.size()),
                                        " fields where the header has ",
                                        std::to_string(header.fields.size())));
    }
    auto analyte = read_analyte(record, index);
    if (!analyte) {
      return parsers::unexpected(analyte.error());
    }
    if (const auto [it, added] = key_lines.emplace(analyte->key, record.line); !added) {
      return parsers::unexpected(concat("line ", line, ", column 'key': '", analyte->key,
                                        "' is already defined on line ",
                                        std::to_string(it->second)));
    }
    // A code maps to one analyte.
    for (const std::string& code : analyte->loinc_codes) {
      if (const auto [it, added] = loinc_owner.emplace(code, analyte->key); !added) {
        return parsers::unexpected(concat("line ", line, ", column 'loinc_codes': ", code,
                                          " is already a code of '", it->second, "'"));
      }
    }
    catalogue.analytes_.push_back(std::move(analyte).value());
  }
  catalogue.reindex();
  return catalogue;
}

void AnalyteCatalogue::upsert(const Analyte& analyte) {
  const auto existing = by_key_.find(analyte.key);
  if (existing == by_key_.end()) {
    analytes_.push_back(analyte);
    reindex();
    return;
  }
  Analyte& into = analytes_[existing->second];
  append_unique(into.loinc_codes, analyte.loinc_codes);
  append_unique(into.local_codes, analyte.local_codes);
  append_unique(into.names, analyte.names);
  append_unique(into.unit_aliases, analyte.unit_aliases);
  for (const auto& [unit, factor] : analyte.conversions) {
    into.conversions.insert_or_assign(unit, factor);
  }
  for (auto [to, from] : {std::pair{&into.display_name, &analyte.display_name},
                          std::pair{&into.specimen, &analyte.specimen},
                          std::pair{&into.canonical_unit, &analyte.canonical_unit},
                          std::pair{&into.optimal_rule, &analyte.optimal_rule},
                          std::pair{&into.trend_rule, &analyte.trend_rule}}) {
    if (!from->empty()) {
      *to = *from;
    }
  }
  if (analyte.ref_low) {
    into.ref_low = analyte.ref_low;
  }
  if (analyte.ref_high) {
    into.ref_high = analyte.ref_high;
  }
  if (analyte.plausible_low) {
    into.plausible_low = analyte.plausible_low;
  }
  if (analyte.plausible_high) {
    into.plausible_high = analyte.plausible_high;
  }
  reindex();
}

void AnalyteCatalogue::reindex() {
  by_key_.clear();
  by_loinc_.clear();
  by_local_.clear();
  by_name_.clear();
  // emplace keeps the first entry: an analyte listed earlier keeps a contested code or name.
  for (std::size_t i = 0; i < analytes_.size(); ++i) {
    const Analyte& analyte = analytes_[i];
    by_key_.emplace(analyte.key, i);
    for (const std::string& code : analyte.loinc_codes) {
      by_loinc_.emplace(code, i);
    }
    for (const std::string& code : analyte.local_codes) {
      by_local_.emplace(code, i);
    }
    by_name_.emplace(fold_name(analyte.key), i);
    if (!analyte.display_name.empty()) {
      by_name_.emplace(fold_name(analyte.display_name), i);
    }
    for (const std::string& name : analyte.names) {
      by_name_.emplace(fold_name(name), i);
    }
  }
}

namespace {

template <class Index>
const Analyte* find_in(const Index& index, const std::vector<Analyte>& analytes,
                       std::string_view what) {
  const auto it = index.find(what);
  return it == index.end() ? nullptr : &analytes[it->second];
}

}  // namespace

const Analyte* AnalyteCatalogue::by_key(std::string_view key) const {
  return find_in(by_key_, analytes_, key);
}

const Analyte* AnalyteCatalogue::by_loinc(std::string_view code) const {
  return find_in(by_loinc_, analytes_, code);
}

const Analyte* AnalyteCatalogue::by_local_code(std::string_view code) const {
  return find_in(by_local_, analytes_, code);
}

const Analyte* AnalyteCatalogue::by_code(std::string_view code) const {
  const Analyte* analyte = by_loinc(code);
  return analyte != nullptr ? analyte : by_local_code(code);
}

const Analyte* AnalyteCatalogue::by_name(std::string_view name) const {
  return find_in(by_name_, analytes_, fold_name(name));
}

}  // namespace labwatch::clinical
