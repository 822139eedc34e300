// SPDX-License-Identifier: Apache-2.0
// normalize: a parsed LabReport to canonical analytes and units, UTC times and an identity.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/normalized.hpp"
#include "parsers/csv_parser.hpp"
#include "parsers/lab_report.hpp"

namespace labwatch::clinical {

// What the config knows about the sender of a file (PRODUCT.md <sources>).
struct SourceContext {
  std::string facility;   // facility code; empty when the file matched no source
  std::string authority;  // assigning authority for CSV patient ids; empty when unknown
  std::string timezone;   // IANA name for naive times; empty when unknown
  parsers::DecimalMark decimal = parsers::DecimalMark::unknown;  // <source decimal=...>
  // <source date-order=...>: how an HL7 time written NN/NN/YYYY is read (DateTime::slashed).
  parsers::DateOrder date_order = parsers::DateOrder::unknown;
};

// A plain decimal number, the whole text: optional sign, digits, at most one decimal separator
// ('.', or ',' too when `decimal_comma`), no exponent, no spaces. nullopt otherwise ("1,234.5",
// "1.234.567", "1e3", "inf"). Exact to the double nearest the decimal text.
std::optional<double> parse_decimal(std::string_view text, bool decimal_comma) noexcept;

// Converts a DateTime to UTC seconds: with its own offset when it has one, else as local time in
// `timezone` (IANA, DST applied). A local time that a DST change makes ambiguous or skips is
// resolved as date::choose::earliest: its first occurrence (New York 01:30 on the November change
// is 05:30Z), or for a skipped one the instant of the change (02:30 on the March change is 07:00Z).
// nullopt when the time is empty or not a real date/time, the offset is beyond +-18:00, or the
// time is naive and `timezone` is empty or not a known zone.
std::optional<UnixSeconds> to_utc(const parsers::DateTime& t, std::string_view timezone);

// Normalizes one report. Results whose code/name is not in the catalogue are counted in `unmapped`;
// a refused result goes to `refusals` (reason non_numeric_value, implausible_value, unknown_unit,
// missing_time, invalid_time or unknown_timezone) and the report keeps every other result.
// A refusal's position is the unit's (Observation::units_where) for unknown_unit, else the value's.
// OBX-11 follows HL7 table 0085 (clinical/result_status.hpp): a withdrawal (X, W, D) is kept
// with status cancelled and value 0, as it needs no value; U without a value is kept with
// promote_only. Lines that are no result (I, N, O; a TX/FT comment; a value such as TNP that says
// the test was not performed) go to `skipped`, never to `refusals`.
// A result the lab flags plain N (OBX-8 / the flag column) while its value lies wholly outside the
// printed range is stored, with a warning (kFlagDisagrees) in `warnings`: the flag's place and the
// side, never the value.
// The message time is MSH-7, else the first OBR-22; without either, HL7 versions are ordered by
// arrival (message_time_from_arrival).
// Errors (the whole report refused): missing_patient_id; unknown_source (a CSV whose file
// matched no <source>, so its ids have no authority); missing_authority (HL7: no CX.4, no
// <source> authority, no MSH-4).
// The warning word of a plain N on a value outside the printed range (one spelling: the log, the
// `explain` output and the docs use it).
inline constexpr std::string_view kFlagDisagrees = "flag_disagrees";

parsers::Expected<NormalizedReport, parsers::Refusal> normalize(const parsers::LabReport& report,
                                                                const AnalyteCatalogue& catalogue,
                                                                const SourceContext& source);

}  // namespace labwatch::clinical
