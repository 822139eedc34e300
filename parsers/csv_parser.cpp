// SPDX-License-Identifier: Apache-2.0
// parse_csv: one forward pass that turns CSV/TSV text into a header and rows of unquoted fields.
#include "parsers/csv_parser.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace labwatch::parsers {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

bool is_blank_byte(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool is_blank_text(std::string_view text) noexcept {
  for (const char c : text) {
    if (c != ' ' && c != '\t') {
      return false;
    }
  }
  return true;
}

// Blank lines (and lines of empty or whitespace-only fields, as spreadsheets emit) carry no data.
bool is_blank_row(const std::vector<std::string>& fields) noexcept {
  for (const std::string& field : fields) {
    if (!is_blank_text(field)) {
      return false;
    }
  }
  return true;
}

ParseError csv_error(RefusalReason code, std::size_t offset, int line, int field,
                     std::string detail) {
  ParseError error;
  error.code = code;
  error.offset = offset;
  error.line = line;
  error.field = field;
  error.detail = std::move(detail);
  return error;
}

// The delimiter is the candidate seen most often outside quotes on the first line that is not
// blank. Ties go to ',' then ';' then tab; a header without any candidate is read as ','.
char sniff_delimiter(std::string_view text, std::size_t pos) noexcept {
  std::size_t commas = 0;
  std::size_t semicolons = 0;
  std::size_t tabs = 0;
  bool quoted = false;
  bool content = false;
  for (; pos < text.size(); ++pos) {
    const char c = text[pos];
    if (quoted) {
      quoted = c != '"';  // a doubled quote closes and reopens, which nets out
      continue;
    }
    if (c == '\n' || c == '\r') {
      if (content) {
        break;
      }
      commas = semicolons = tabs = 0;  // a blank line before the header
      continue;
    }
    if (c == '\t') {
      ++tabs;
      continue;
    }
    if (c == ' ') {
      continue;
    }
    content = true;
    if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      ++commas;
    } else if (c == ';') {
      ++semicolons;
    }
  }
  if (tabs > commas && tabs > semicolons) {
    return '\t';
  }
  return semicolons > commas ? ';' : ',';
}

// Reads rows field by field. Line ends are \n, \r\n or a lone \r, inside quotes too, so `line_`
// stays the physical line number an editor shows.
class CsvTokenizer {
 public:
  CsvTokenizer(std::string_view text, std::size_t pos, char delimiter) noexcept
      : text_(text), pos_(pos), delimiter_(delimiter) {}

  [[nodiscard]] bool at_end() const noexcept { return pos_ >= text_.size(); }
  [[nodiscard]] std::size_t pos() const noexcept { return pos_; }
  [[nodiscard]] int line() const noexcept { return line_; }

  // Replaces `fields` with the row at the current position and moves past its line end.
  std::optional<ParseError> read_row(std::vector<std::string>& fields) {
    fields.clear();
    for (;;) {
      if (fields.size() == kMaxCsvColumns) {
        return csv_error(RefusalReason::too_many_columns, pos_, line_,
                         static_cast<int>(fields.size() + 1),
                         "row has more than " + std::to_string(kMaxCsvColumns) + " columns");
      }
      fields.emplace_back();
      if (auto error = read_field(fields.back(), static_cast<int>(fields.size()))) {
        return error;
      }
      if (pos_ < text_.size() && text_[pos_] == delimiter_) {
        ++pos_;
        continue;
      }
      end_line();
      return std::nullopt;
    }
  }

 private:
  // RFC 4180 field: either quoted (delimiters and line ends are data, "" is one quote) or plain.
  // Bytes between a closing quote and the next delimiter are kept as written rather than refused.
  std::optional<ParseError> read_field(std::string& out, int number) {
    const std::size_t start = pos_;
    const int start_line = line_;
    if (pos_ < text_.size() && text_[pos_] == '"') {
      ++pos_;
      for (;;) {
        const std::size_t quote = text_.find('"', pos_);
        if (quote == std::string_view::npos) {
          return csv_error(RefusalReason::unterminated_quote, start, start_line, number,
                           "quoted field is not closed before the end of the file");
        }
        const std::string_view chunk = text_.substr(pos_, quote - pos_);
        count_line_ends(chunk);
        if (!append_bounded(out, chunk)) {
          return too_long(start, start_line, number);
        }
        pos_ = quote + 1;
        if (pos_ >= text_.size() || text_[pos_] != '"') {
          break;
        }
        if (!append_bounded(out, "\"")) {
          return too_long(start, start_line, number);
        }
        ++pos_;
      }
    }
    std::size_t end = pos_;
    while (end < text_.size() && text_[end] != delimiter_ && text_[end] != '\n' &&
           text_[end] != '\r') {
      ++end;
    }
    if (!append_bounded(out, text_.substr(pos_, end - pos_))) {
      return too_long(start, start_line, number);
    }
    pos_ = end;
    return std::nullopt;
  }

  void end_line() noexcept {
    if (pos_ >= text_.size()) {
      return;
    }
    if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') {
      ++pos_;
    }
    ++pos_;
    ++line_;
  }

  void count_line_ends(std::string_view chunk) noexcept {
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      if (chunk[i] == '\n') {
        ++line_;
      } else if (chunk[i] == '\r') {
        // A \r at the end of the chunk is followed by a quote, so it is a lone \r.
        if (i + 1 == chunk.size() || chunk[i + 1] != '\n') {
          ++line_;
        }
      }
    }
  }

  // Checked before appending, so an oversized field never allocates more than the limit.
  static bool append_bounded(std::string& out, std::string_view chunk) {
    if (chunk.size() > kMaxCsvFieldBytes - out.size()) {
      return false;
    }
    out.append(chunk);
    return true;
  }

  static ParseError too_long(std::size_t start, int line, int number) {
    return csv_error(RefusalReason::field_too_long, start, line, number,
                     "field is longer than " + std::to_string(kMaxCsvFieldBytes) + " bytes");
  }

  std::string_view text_;
  std::size_t pos_;
  char delimiter_;
  int line_ = 1;
};

}  // namespace

Expected<CsvTable, ParseError> parse_csv(std::string_view text) {
  if (text.size() > kMaxCsvBytes) {
    return unexpected(csv_error(RefusalReason::input_too_large, kMaxCsvBytes, -1, -1,
                                "file is larger than " + std::to_string(kMaxCsvBytes) + " bytes"));
  }
  const std::size_t start = text.starts_with(kUtf8Bom) ? kUtf8Bom.size() : 0;
  bool blank = true;
  for (std::size_t i = start; i < text.size() && blank; ++i) {
    blank = is_blank_byte(text[i]);
  }
  if (blank) {
    return unexpected(csv_error(RefusalReason::empty_file, 0, 1, -1, "file holds no CSV header"));
  }

  CsvTable table;
  table.delimiter = sniff_delimiter(text, start);
  CsvTokenizer tokenizer(text, start, table.delimiter);
  std::vector<std::string> fields;
  std::size_t cells = 0;
  bool have_header = false;
  while (!tokenizer.at_end()) {
    const std::size_t offset = tokenizer.pos();
    const int line = tokenizer.line();
    if (auto error = tokenizer.read_row(fields)) {
      return unexpected(std::move(*error));
    }
    if (is_blank_row(fields)) {
      continue;
    }
    cells += fields.size();
    if (cells > kMaxCsvCells) {
      return unexpected(csv_error(RefusalReason::too_many_fields, offset, line, -1,
                                  "file has more than " + std::to_string(kMaxCsvCells) + " cells"));
    }
    if (!have_header) {
      have_header = true;
      table.header = std::move(fields);
      table.header_line = line;
      table.header_offset = offset;
    } else {
      table.rows.push_back(CsvRow{std::move(fields), line, offset});
    }
    fields = {};
    fields.reserve(table.header.size());
  }
  if (!have_header) {
    return unexpected(csv_error(RefusalReason::empty_file, 0, 1, -1, "file holds no CSV header"));
  }
  return table;
}

}  // namespace labwatch::parsers
