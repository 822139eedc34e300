// SPDX-License-Identifier: Apache-2.0
// LabReport: the plain, format-neutral model that both parsers produce and normalize consumes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "parsers/lab_numbers.hpp"
#include "parsers/refusal_reason.hpp"

namespace labwatch::parsers {

// A date written NN/NN/YYYY, read before the sender's date order is known (an HL7 field is read
// before its message's <source> is): which of its readings are real dates, month first (03/04:
// 4 March) and day first (3 April). `none` for every other shape and for dates read in an order.
enum class SlashedDate : std::uint8_t { none, month_first, day_first, both };

// A point in time as the sender wrote it. HL7 TS/DTM and CSV dates of any precision.
// A time without an offset is "naive": the caller applies the sender's timezone.
struct DateTime {
  enum class Precision : std::uint8_t { none, year, month, day, hour, minute, second, fraction };
  int year = 0;
  int month = 1;   // 1-12
  int day = 1;     // 1-31
  int hour = 0;    // 0-23
  int minute = 0;  // 0-59
  int second = 0;  // 0-60 (a leap second is kept as written)
  int nanosecond = 0;
  Precision precision = Precision::none;
  bool has_offset = false;
  int offset_minutes = 0;  // east of UTC: -0500 is -300
  // The field held text that is no date and time (empty() is true too): such a field is refused,
  // never skipped for the next one in line.
  bool unreadable = false;
  // Not none: month and day hold the month-first reading when it is a date, else the day-first
  // one, and only parsers::in_date_order, given the sender's order, says which one is meant.
  SlashedDate slashed = SlashedDate::none;

  [[nodiscard]] bool empty() const noexcept { return precision == Precision::none; }
  friend bool operator==(const DateTime&, const DateTime&) = default;
};

// Where something sits in its source file. Unknown parts stay -1 / empty.
struct SourcePos {
  int message = -1;        // 0-based message index within the file (HL7)
  int segment = -1;        // 1-based segment number within the message (HL7)
  std::string segment_id;  // "OBX", "PID", ... (HL7)
  int field = -1;          // 1-based field number (HL7) or column number (CSV)
  int line = -1;           // 1-based physical line in the file
  std::string column;      // CSV header name
  std::size_t offset = static_cast<std::size_t>(-1);  // byte offset in the file
};

// "message 3, line 12, segment 5 OBX, field 5" (a CSV column by its name: "column 'Result'"),
// each part when known; "" when none is.
std::string describe(const SourcePos& where);

// A piece of input that was refused, with a machine-readable reason and a human detail.
// `detail` never contains patient data: it names places and reasons, not values of identity.
struct Refusal {
  RefusalReason reason = RefusalReason::unrecognized_format;
  std::string detail;  // e.g. "OBX-5 'pending' is not a number"
  SourcePos where;
  // What the refused piece was about, when known (kept in the DB, never logged at info level).
  std::string patient_key;  // AUTHORITY|MRN
  std::string code;         // OBX-3 / LOINC as sent
  std::string analyte;      // canonical key, when normalize got that far
  DateTime collected_at;
  char result_status = 0;  // 'F', 'P', 'C', 'X' when known
};

// CWE/CE coded element, the primary triplet and the alternate one (components 1-3 and 4-6).
struct Coded {
  std::string code;
  std::string text;
  std::string system;  // "LN" for LOINC
  std::string alt_code;
  std::string alt_text;
  std::string alt_system;
};

// CX: an identifier with its assigning authority (CX.4) and identifier type (CX.5, e.g. "MR").
struct Identifier {
  std::string id;
  std::string authority;
  std::string type;
};

struct Patient {
  std::vector<Identifier> identifiers;  // PID-3 repetitions in order; CSV: one with empty authority
  std::string family;
  std::string given;
  std::string middle;
  DateTime birth_date;  // precision day
  std::string sex;      // as sent: "F", "M", "W", "Female", ...
};

struct Observation {
  int set_id = 0;          // OBX-1
  std::string value_type;  // OBX-2: NM, SN, ST, TX, ...
  Coded code;              // OBX-3
  std::string value;       // OBX-5 decoded; for SN the number part
  std::string
      comparator;     // SN comparator ("<", ">=", ...) or empty; text values keep theirs in `value`
  std::string units;  // OBX-6 identifier (component 1), decoded
  std::string reference_range;     // OBX-7 as sent
  std::string abnormal_flags;      // OBX-8, repetitions joined by '~'
  char result_status = 0;          // OBX-11: F, P, C, X, ... (0 when absent)
  DateTime observed_at;            // OBX-14
  std::vector<std::string> notes;  // NTE-3 following this OBX, decoded
  std::string test_name;           // CSV: the test name column (HL7: code.text)
  SourcePos where;                 // the value: OBX-5, or the CSV value column
  SourcePos units_where;           // the unit: OBX-6, or the CSV unit column on the same line
};

struct Order {
  std::string placer_order_number;     // OBR-2
  std::string filler_order_number;     // OBR-3 entity identifier (component 1)
  std::string filler_authority;        // OBR-3 namespace (component 2)
  Coded service;                       // OBR-4
  DateTime collected_at;               // OBR-7
  DateTime specimen_collected_at;      // SPM-17.1 (2.5+); unreadable when the SPMs disagree
  DateTime status_changed_at;          // OBR-22 results report/status change time
  std::string ordering_provider_id;    // OBR-16.1
  std::string ordering_provider_name;  // OBR-16 family, given
  char result_status = 0;              // OBR-25
  std::string parent_filler_id;        // OBR-29.2: the order this one follows up
  std::vector<std::string> notes;      // NTE directly after OBR
  std::vector<Observation> observations;
};

enum class SourceFormat : std::uint8_t { hl7, csv };

// Something the parser read differently from what the message declared, worth a line in the log
// but no refusal. Like a Refusal's detail, it names places and reasons, never patient data.
struct Warning {
  std::string reason;  // e.g. "unknown_charset"
  std::string detail;  // e.g. "MSH-18 names no character set of HL7 table 0211; ..."
  SourcePos where;
};

// One lab message (HL7: one MSH...; CSV: the consecutive rows of one patient and collection time).
struct LabReport {
  SourceFormat format = SourceFormat::hl7;
  std::string sending_facility;     // MSH-4 namespace id (component 1); CSV: empty
  std::string sending_application;  // MSH-3
  std::string control_id;           // MSH-10; CSV: empty
  DateTime message_time;            // MSH-7
  std::string version;              // MSH-12
  std::string message_type;         // MSH-9 joined with '^', e.g. "ORU^R01"
  Patient patient;
  std::vector<Order> orders;
  SourcePos where;         // message index, first line, byte offset
  std::string raw_digest;  // hex SHA-256 (or other stable digest) of the raw message bytes, set by
                           // the caller
  // CSV: what the numbers of the whole file show of its decimal mark (a file is one export).
  // HL7: empty; normalize looks at the message's own values and ranges.
  MarkEvidence file_numbers;
  std::vector<Warning> warnings;
};

}  // namespace labwatch::parsers
