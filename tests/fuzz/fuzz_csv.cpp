// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: parse_csv and csv_to_reports with the built-in vocabulary.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "parsers/csv_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto table = labwatch::parsers::parse_csv(text);
  if (table) {
    static_cast<void>(
        labwatch::parsers::csv_to_reports(table.value(), labwatch::parsers::CsvVocabulary{}));
    for (const auto& row : table->rows) {
      for (const auto& field : row.fields) {
        static_cast<void>(labwatch::parsers::parse_csv_datetime(field));
      }
    }
  }
  return 0;
}
