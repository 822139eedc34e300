// SPDX-License-Identifier: Apache-2.0
// Test support: a small CSV reader for the corpus answer files and the CLI's CSV output.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace labwatch::test {

// One data line, keyed by the header's column names.
using CsvRecord = std::map<std::string, std::string>;

// Splits one line at commas. A field may be quoted ("a, b"), with "" for a quote inside it.
inline std::vector<std::string> split_csv_record_line(std::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

// Reads `text` (LF or CRLF lines; the first non-empty one is the header) into one record per
// non-empty line after it. A line shorter than the header lacks the missing keys; cells beyond
// the header are dropped. Quoted fields may hold commas but not line breaks: the files read
// here have none.
inline std::vector<CsvRecord> read_csv_records(std::string_view text) {
  std::vector<CsvRecord> records;
  std::vector<std::string> header;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      continue;
    }
    std::vector<std::string> fields = split_csv_record_line(line);
    if (header.empty()) {
      header = std::move(fields);
      continue;
    }
    CsvRecord record;
    for (std::size_t i = 0; i < header.size() && i < fields.size(); ++i) {
      record[header[i]] = std::move(fields[i]);
    }
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace labwatch::test
