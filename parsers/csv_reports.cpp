// SPDX-License-Identifier: Apache-2.0
// csv_to_reports: table rows to LabReports, one per run of rows of one patient and collection time.
#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "parsers/csv_fields.hpp"
#include "parsers/csv_parser.hpp"

namespace labwatch::parsers {
namespace {

using Col = CsvColumn;

SourcePos row_pos(const CsvRow& row) {
  SourcePos pos;
  pos.line = row.line;
  pos.offset = row.offset;
  return pos;
}

// The trimmed cells of one row under the resolved header.
class RowView {
 public:
  RowView(const CsvTable& table, const CsvColumnMap& columns, const CsvRow& row) noexcept
      : table_(table), columns_(columns), row_(row) {}

  [[nodiscard]] std::string_view cell(Col c) const noexcept {
    const auto index = columns_[c];
    if (!index || *index >= row_.fields.size()) {
      return {};
    }
    return trim_csv_blanks(row_.fields[*index]);
  }

  // The first of `choices` that the header has (the last choice when it has none).
  [[nodiscard]] Col first_present(std::initializer_list<Col> choices) const noexcept {
    for (const Col c : choices) {
      if (columns_.has(c)) {
        return c;
      }
    }
    return *(choices.end() - 1);
  }

  // The row's position, pointing at column `c` when the header has it.
  [[nodiscard]] SourcePos pos(Col c) const {
    SourcePos pos = row_pos(row_);
    if (const auto index = columns_[c]) {
      pos.field = static_cast<int>(*index + 1);
      pos.column = table_.header[*index];
    }
    return pos;
  }

 private:
  const CsvTable& table_;
  const CsvColumnMap& columns_;
  const CsvRow& row_;
};

// Spreadsheets often end rows with extra empty cells; anything else off the header width is a
// misaligned row whose cells cannot be trusted.
bool has_header_width(const CsvRow& row, std::size_t width) noexcept {
  if (row.fields.size() < width) {
    return false;
  }
  for (std::size_t i = width; i < row.fields.size(); ++i) {
    if (!trim_csv_blanks(row.fields[i]).empty()) {
      return false;
    }
  }
  return true;
}

Refusal width_refusal(const CsvTable& table, const CsvRow& row) {
  Refusal refusal;
  refusal.reason = RefusalReason::bad_row;
  refusal.detail = "row has " + std::to_string(row.fields.size()) + " fields, the header has " +
                   std::to_string(table.header.size());
  refusal.where = row_pos(row);
  // Point at the first missing or first surplus cell.
  const std::size_t first_off = std::min(row.fields.size(), table.header.size());
  refusal.where.field = static_cast<int>(first_off + 1);
  if (first_off < table.header.size()) {
    refusal.where.column = table.header[first_off];
  }
  return refusal;
}

std::string missing_columns_detail(const CsvColumnMap& columns) {
  std::vector<std::string_view> missing;
  if (!columns.has(Col::patient_id)) {
    missing.push_back(to_string(Col::patient_id));
  }
  if (!columns.has(Col::loinc) && !columns.has(Col::local_code) && !columns.has(Col::test_name)) {
    missing.emplace_back("loinc|local_code|test_name");
  }
  for (const Col c : {Col::value, Col::unit, Col::collected_at}) {
    if (!columns.has(c)) {
      missing.push_back(to_string(c));
    }
  }
  if (missing.empty()) {
    return {};
  }
  std::string detail = "missing required columns: ";
  for (std::size_t i = 0; i < missing.size(); ++i) {
    if (i > 0) {
      detail += ", ";
    }
    detail += missing[i];
  }
  return detail;
}

Coded row_code(const RowView& row) {
  Coded code;
  const std::string_view loinc = row.cell(Col::loinc);
  const std::string_view local = row.cell(Col::local_code);
  code.text = row.cell(Col::test_name);
  if (!loinc.empty()) {
    code.code = loinc;
    code.system = "LN";
    if (!local.empty()) {
      code.alt_code = local;
      code.alt_text = code.text;
      code.alt_system = "L";
    }
  } else if (!local.empty()) {
    code.code = local;
    code.system = "L";
  }
  return code;
}

Patient row_patient(const RowView& row, const DateTime& birth_date) {
  Patient patient;
  patient.identifiers.push_back(Identifier{std::string(row.cell(Col::patient_id)), "", ""});
  CsvPersonName name = split_csv_person_name(row.cell(Col::patient_name));
  // Separate columns are more precise than a combined one, so they win where they are filled.
  if (const std::string_view last = row.cell(Col::last_name); !last.empty()) {
    name.family = last;
  }
  if (const std::string_view first = row.cell(Col::first_name); !first.empty()) {
    name.given = first;
  }
  patient.family = std::move(name.family);
  patient.given = std::move(name.given);
  patient.middle = std::move(name.middle);
  patient.birth_date = birth_date;
  patient.sex = row.cell(Col::sex);
  return patient;
}

// A row that became an observation, with what decides its report and order.
struct ParsedRow {
  Patient patient;
  DateTime collected_at;
  Observation observation;
};

// The order of the file's NN/NN/YYYY dates: the configured one, else what its dates prove. An
// exporter writes every date of a file one way, so 10/25/2024 in one row (only month first is a
// date) settles 03/04/2025 in another. Dates that prove both orders settle nothing.
DateOrder file_date_order(const CsvTable& table, const CsvColumnMap& columns,
                          DateOrder configured) {
  if (configured != DateOrder::unknown) {
    return configured;
  }
  bool mdy = false;
  bool dmy = false;
  for (const CsvRow& raw : table.rows) {
    const RowView row(table, columns, raw);
    for (const Col c : {Col::collected_at, Col::birth_date}) {
      const DateOrder proven = date_order_evidence(row.cell(c));
      mdy = mdy || proven == DateOrder::mdy;
      dmy = dmy || proven == DateOrder::dmy;
    }
  }
  if (mdy == dmy) {
    return DateOrder::unknown;
  }
  return mdy ? DateOrder::mdy : DateOrder::dmy;
}

// Why the date of a cell was not read, without its value (a date is patient data).
std::string date_detail(DateErrc error, std::string_view what) {
  if (error == DateErrc::ambiguous) {
    return std::string(what) +
           " NN/NN/YYYY reads as two different days (month/day or day/month) and neither the "
           "file nor <source date-order> settles which";
  }
  return std::string(what) +
         " is not a valid date (YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, YYYYMMDD, DD.MM.YYYY or "
         "NN/NN/YYYY, with an optional time)";
}

// Reads one row; a row that cannot be trusted becomes a refusal naming its line and column.
// Values and units stay text: interpreting them is normalize's job.
std::variant<ParsedRow, Refusal> read_row(const RowView& row, DateOrder date_order) {
  Refusal refusal;
  const std::string_view id = row.cell(Col::patient_id);
  if (!id.empty()) {
    refusal.patient_key = "|" + std::string(id);
  }
  const Coded code = row_code(row);
  refusal.code = code.code;
  auto refuse = [&](RefusalReason reason, Col column, std::string detail) {
    refusal.reason = reason;
    refusal.where = row.pos(column);
    refusal.detail = std::move(detail);
    return refusal;
  };

  if (id.empty()) {
    return refuse(RefusalReason::missing_value, Col::patient_id, "patient id is empty");
  }
  if (code.code.empty() && code.text.empty()) {
    return refuse(RefusalReason::missing_value,
                  row.first_present({Col::loinc, Col::local_code, Col::test_name}),
                  "test code and name are empty");
  }
  const std::string_view collected_text = row.cell(Col::collected_at);
  if (collected_text.empty()) {
    return refuse(RefusalReason::missing_value, Col::collected_at, "collection time is empty");
  }
  const Expected<DateTime, DateErrc> collected = read_csv_datetime(collected_text, date_order);
  if (!collected) {
    // A collection date is patient data: the detail names the cell, not what it holds.
    return refuse(collected.error() == DateErrc::ambiguous ? RefusalReason::ambiguous_date
                                                           : RefusalReason::bad_date,
                  Col::collected_at, date_detail(collected.error(), "collection time"));
  }
  refusal.collected_at = *collected;
  const std::optional<char> status = csv_result_status(row.cell(Col::status));
  if (!status) {
    return refuse(RefusalReason::bad_status, Col::status, "result status is not one of F, P, C, X");
  }
  refusal.result_status = *status;
  DateTime birth_date;
  if (const std::string_view birth_text = row.cell(Col::birth_date); !birth_text.empty()) {
    const Expected<DateTime, DateErrc> birth = read_csv_datetime(birth_text, date_order);
    if (!birth) {
      // The birth date itself is identifying, so the detail does not repeat it.
      return refuse(birth.error() == DateErrc::ambiguous ? RefusalReason::ambiguous_date
                                                         : RefusalReason::bad_date,
                    Col::birth_date, date_detail(birth.error(), "birth date"));
    }
    birth_date.year = birth->year;
    birth_date.month = birth->month;
    birth_date.day = birth->day;
    birth_date.precision = DateTime::Precision::day;
  }

  ParsedRow parsed;
  parsed.patient = row_patient(row, birth_date);
  parsed.collected_at = *collected;
  Observation& obs = parsed.observation;
  obs.code = code;
  obs.test_name = code.text;
  obs.value = row.cell(Col::value);
  obs.units = row.cell(Col::unit);
  obs.reference_range = row.cell(Col::reference_range);
  obs.abnormal_flags = row.cell(Col::flag);
  obs.result_status = *status;
  if (const std::string_view comment = row.cell(Col::comments); !comment.empty()) {
    obs.notes.emplace_back(comment);
  }
  obs.where = row.pos(Col::value);
  obs.units_where = row.pos(Col::unit);
  return parsed;
}

}  // namespace

CsvFileResult csv_to_reports(const CsvTable& table, const CsvVocabulary& vocabulary,
                             DateOrder date_order) {
  CsvFileResult result;
  const CsvColumnMap columns = resolve_csv_columns(table.header, vocabulary);
  if (std::string detail = missing_columns_detail(columns); !detail.empty()) {
    Refusal refusal;
    refusal.reason = RefusalReason::missing_columns;
    refusal.detail = std::move(detail);
    refusal.where.line = table.header_line;
    refusal.where.offset = table.header_offset;
    result.refusals.push_back(std::move(refusal));
    return result;
  }

  // A report is a run of consecutive rows with the same patient id and collection time text;
  // rows refused in between do not end the run. Views point into `table`, which outlives them.
  const DateOrder dates = file_date_order(table, columns, date_order);
  std::string_view run_id;
  std::string_view run_time;
  MarkEvidence evidence;
  for (const CsvRow& raw : table.rows) {
    if (!has_header_width(raw, table.header.size())) {
      result.refusals.push_back(width_refusal(table, raw));
      continue;
    }
    const RowView row(table, columns, raw);
    auto read = read_row(row, dates);
    if (auto* refusal = std::get_if<Refusal>(&read)) {
      result.refusals.push_back(std::move(*refusal));
      continue;
    }
    auto& parsed = std::get<ParsedRow>(read);
    const std::string_view id = row.cell(Col::patient_id);
    const std::string_view time = row.cell(Col::collected_at);
    const std::string_view accession = row.cell(Col::accession);
    if (result.reports.empty() || id != run_id || time != run_time) {
      LabReport report;
      report.format = SourceFormat::csv;
      report.patient = std::move(parsed.patient);
      report.where.line = raw.line;
      report.where.offset = raw.offset;
      result.reports.push_back(std::move(report));
      run_id = id;
      run_time = time;
    }
    std::vector<Order>& orders = result.reports.back().orders;
    // One accession is one order; a change of accession within the run starts another.
    if (orders.empty() || orders.back().filler_order_number != accession) {
      Order order;
      order.collected_at = parsed.collected_at;
      order.filler_order_number = accession;
      orders.push_back(std::move(order));
    }
    Order& order = orders.back();
    parsed.observation.set_id = static_cast<int>(order.observations.size() + 1);
    evidence.add(parsed.observation.value);
    evidence.add(parsed.observation.reference_range);
    order.observations.push_back(std::move(parsed.observation));
  }
  // A CSV file is one export, written with one decimal mark: every report carries what the whole
  // file shows of it, so that "1,234" in one row is read by the "45,2" of another.
  for (LabReport& report : result.reports) {
    report.file_numbers = evidence;
  }
  return result;
}

}  // namespace labwatch::parsers
