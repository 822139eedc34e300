# SPDX-License-Identifier: Apache-2.0
# Writes OUT, a C++ file defining labwatch::clinical::builtin_catalogue_csv() from the CSV file IN.
file(READ ${IN} content)
file(WRITE ${OUT} "// Generated from analytes.csv; do not edit.\n#include <string_view>\nnamespace labwatch::clinical {\nstd::string_view builtin_catalogue_csv() noexcept;\nstd::string_view builtin_catalogue_csv() noexcept {\n  return R\"labwatch_csv(${content})labwatch_csv\";\n}\n}  // namespace labwatch::clinical\n")
