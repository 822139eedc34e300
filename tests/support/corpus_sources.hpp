// SPDX-License-Identifier: Apache-2.0
// Test support: the <source> elements of the public corpus senders, built from its
// facilities.csv as the corpus checker builds them (one glob per file prefix).
#pragma once

#include <sstream>
#include <string>

#include "support/csv_records.hpp"

namespace labwatch::test {

// One `<source .../>` line per row of `facilities_csv` (the text of facilities.csv), each
// indented by four spaces and ending in a newline.
inline std::string corpus_source_lines(const std::string& facilities_csv) {
  std::string xml;
  for (const CsvRecord& f : read_csv_records(facilities_csv)) {
    std::string globs;
    std::istringstream prefixes(f.at("file_prefixes"));
    std::string prefix;
    while (std::getline(prefixes, prefix, ';')) {
      globs += (globs.empty() ? "" : ";") + prefix + "*";
    }
    xml += "    <source facility=\"" + f.at("facility") + "\" authority=\"" +
           f.at("assigning_authority") + "\" timezone=\"" + f.at("timezone") + "\" files=\"" +
           globs + "\"/>\n";
  }
  return xml;
}

}  // namespace labwatch::test
