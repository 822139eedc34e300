// SPDX-License-Identifier: Apache-2.0
// Synthetic lab feeds whose stored results, alerts and destinations are known exactly.
#pragma once

#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace labwatch::test {

// Every patient-identifying string of a feed is a canary: family and given names start with
// "Qzphi", MRNs with "QZMRN", birth dates fall in 1917 and collection dates in 2011. No log line,
// reason file or mail header may ever carry one (find_phi in probes.hpp looks for them).
constexpr int kFeedPatients = 97;

enum class FeedKind {
  csv_single,      // one ferritin row, "Z" time; some values carry a comparator ("<5", ">1000")
  csv_local_time,  // one ferritin row, local time of the GEN source (Europe/London, DST applied)
  csv_panel,       // ferritin, homocysteine and vitamin D at one draw
  hl7_panel,       // ORU^R01: ferritin (ug/L, an alias) and homocysteine, times with -0500
  csv_partial,     // a good row and a row whose value is not a number: stored, then failed/
  garbage,         // not a lab file at all: refused whole, failed/
  copy,            // the bytes of an earlier file under another name: already known, processed/
  alerting,        // one ferritin row below its optimal target (ge:50)
};

// One current result as `labwatch export --format csv` prints it, without person_id (which
// depends on the order of ingestion).
struct ExpectedRow {
  std::string source_file;
  std::string patient_key;
  std::string analyte;
  std::string value;
  std::string unit;
  std::string collected_at;
  std::string comparator;
  bool alert = false;  // outside its optimal target
  int patient = 0;

  // The contract columns in export order, person_id left out.
  [[nodiscard]] std::string key() const {
    return source_file + "," + patient_key + "," + analyte + "," + value + "," + unit + "," +
           collected_at + ",final," + comparator;
  }
};

struct FeedFile {
  std::string name;
  std::string bytes;
  FeedKind kind = FeedKind::csv_single;
  bool whole = true;              // ends in processed/; else in failed/ with a reason file
  std::string original;           // for a copy: the name of the file whose bytes it repeats
  std::vector<ExpectedRow> rows;  // the current results this file stores
};

namespace feed_detail {

using std::chrono::seconds;
using std::chrono::sys_seconds;

inline std::string letters(int n) {
  std::string out;
  out += static_cast<char>('a' + n / 676 % 26);
  out += static_cast<char>('a' + n / 26 % 26);
  out += static_cast<char>('a' + n % 26);
  return out;
}

struct Patient {
  std::string family;
  std::string given;
  std::string mrn;
  std::string birth_iso;  // YYYY-MM-DD
  std::string birth_hl7;  // YYYYMMDD
  char sex = 'F';
};

inline std::string format_date(std::chrono::sys_days day, bool iso) {
  const std::chrono::year_month_day ymd(day);
  std::array<char, 16> out{};
  std::snprintf(out.data(), out.size(), iso ? "%04d-%02u-%02u" : "%04d%02u%02u",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  return out.data();
}

// "YYYY-MM-DDTHH:MM:SS" (iso) or "YYYYMMDDHHMMSS" (HL7) of `t`, with `suffix` appended.
inline std::string format_time(sys_seconds t, bool iso, std::string_view suffix) {
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::hh_mm_ss hms(t - day);
  std::array<char, 32> clock{};
  std::snprintf(clock.data(), clock.size(), iso ? "T%02d:%02d:%02d" : "%02d%02d%02d",
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return format_date(day, iso) + clock.data() + std::string(suffix);
}

inline Patient patient(int p) {
  using namespace std::chrono;
  Patient out;
  out.family = "Qzphifam" + letters(p);
  out.given = "Qzphigiv" + letters(p * 7 + 3);
  std::array<char, 16> mrn{};
  std::snprintf(mrn.data(), mrn.size(), "QZMRN%05d", p);
  out.mrn = mrn.data();
  const sys_days birth = sys_days(year(1917) / January / 1) + days(p % 300);
  out.birth_iso = format_date(birth, true);
  out.birth_hl7 = format_date(birth, false);
  out.sex = p % 2 == 0 ? 'F' : 'M';
  return out;
}

// Each file's draw time is its own: no two files share a natural key (person, analyte, time).
inline sys_seconds collected(int index) {
  using namespace std::chrono;
  return sys_days(year(2011) / January / 2) + seconds(600) + seconds(index) * 3000;
}

// British Summer Time in 2011: 01:00 UTC on 27 March to 01:00 UTC on 30 October.
inline sys_seconds london_wall_clock(sys_seconds utc) {
  using namespace std::chrono;
  const sys_seconds start = sys_days(year(2011) / March / 27) + hours(1);
  const sys_seconds end = sys_days(year(2011) / October / 30) + hours(1);
  return utc >= start && utc < end ? utc + hours(1) : utc;
}

// Ferritin in ng/mL, never in the "ideal" band 50..70 (ge:50;ideal:gt:70) so that the alert
// decision is plain: below 50 alerts, above 70 does not.
inline std::string ferritin_value(int index, bool& alert) {
  int v = 10 + index * 37 % 120;
  if (v >= 50 && v <= 70) {
    v += 25;
  }
  alert = v < 50;
  return std::to_string(v) + (index % 3 == 0 ? ".5" : "");
}

constexpr std::string_view kCsvHeader =
    "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,ref_range,collected_at\n";

inline std::string csv_row(const Patient& p, std::string_view test, std::string_view loinc,
                           std::string_view value, std::string_view unit, std::string_view range,
                           std::string_view time) {
  std::string row = p.mrn + "," + p.family + "," + p.given + "," + p.birth_iso + ",";
  row += p.sex;
  row += "," + std::string(test) + "," + std::string(loinc) + "," + std::string(value) + "," +
         std::string(unit) + "," + std::string(range) + "," + std::string(time) + "\n";
  return row;
}

}  // namespace feed_detail

// The kind of file `index` of the standard feed: mostly good files, with one garbage file, one
// partially refused file and one byte-identical copy in every twenty.
inline FeedKind feed_kind(int index) {
  const int slot = index % 20;
  if (slot == 0) {
    return FeedKind::garbage;
  }
  if (slot == 1) {
    return FeedKind::csv_partial;
  }
  if (slot <= 6) {
    return FeedKind::hl7_panel;
  }
  if (slot <= 8) {
    return FeedKind::csv_panel;
  }
  if (slot <= 10) {
    return FeedKind::csv_local_time;
  }
  if (slot == 11) {
    return FeedKind::copy;  // of file index - 5, an HL7 panel
  }
  return FeedKind::csv_single;
}

// File `index` of a feed, of kind `kind`, with what it is expected to store. Files cycle through
// `patients` patients (at most 17,576, the distinct names).
inline FeedFile make_feed_file(int index, FeedKind kind, int patients = kFeedPatients) {
  using namespace feed_detail;
  const int p = index % patients;
  const Patient who = patient(p);
  const sys_seconds when = collected(index);
  const std::string utc = format_time(when, true, "Z");
  const std::string key = "GEN|" + who.mrn;
  std::array<char, 32> stem{};
  std::snprintf(stem.data(), stem.size(), "gen_%05d", index);

  FeedFile file;
  file.kind = kind;
  const auto expect = [&](std::string analyte, std::string value, std::string unit,
                          std::string comparator, bool alert) {
    file.rows.push_back({file.name, key, std::move(analyte), std::move(value), std::move(unit), utc,
                         std::move(comparator), alert, p});
  };

  switch (kind) {
    case FeedKind::csv_single:
    case FeedKind::csv_local_time:
    case FeedKind::alerting: {
      file.name = std::string(stem.data()) + ".csv";
      bool alert = false;
      std::string value = ferritin_value(index, alert);
      std::string comparator;
      std::string written = value;
      if (kind == FeedKind::alerting) {
        value = std::to_string(10 + index % 39);
        written = value;
        alert = true;
      } else if (kind == FeedKind::csv_single && index % 11 == 0) {
        written = "<5";
        value = "5";
        comparator = "<";
        alert = true;
      } else if (kind == FeedKind::csv_single && index % 11 == 1) {
        written = ">1000";
        value = "1000";
        comparator = ">";
        alert = true;  // within the optimal target, but above the lab's printed 15-150
      }
      const std::string time =
          kind == FeedKind::csv_local_time ? format_time(london_wall_clock(when), true, "") : utc;
      file.bytes = std::string(kCsvHeader) +
                   csv_row(who, "Ferritin", "2276-4", written, "ng/mL", "15-150", time);
      expect("ferritin", value, "ng/mL", comparator, alert);
      break;
    }
    case FeedKind::csv_panel: {
      file.name = std::string(stem.data()) + ".csv";
      bool ferritin_alert = false;
      const std::string ferritin = ferritin_value(index, ferritin_alert);
      const int homocysteine = 4 + index % 9;
      const int vitamin_d = 25 + index * 13 % 50;
      const std::string hcy = std::to_string(homocysteine) + ".2";
      file.bytes =
          std::string(kCsvHeader) +
          csv_row(who, "Ferritin", "2276-4", ferritin, "ng/mL", "15-150", utc) +
          csv_row(who, "Homocysteine", "13965-9", hcy, "umol/L", "0-15", utc) +
          csv_row(who, "Vitamin D", "1989-3", std::to_string(vitamin_d), "ng/mL", "30-100", utc);
      expect("ferritin", ferritin, "ng/mL", "", ferritin_alert);
      expect("homocysteine", hcy, "umol/L", "", homocysteine < 6 || homocysteine >= 8);
      expect("vitamin_d_25oh", std::to_string(vitamin_d), "ng/mL", "",
             vitamin_d < 40 || vitamin_d > 60);
      break;
    }
    case FeedKind::hl7_panel: {
      file.name = std::string(stem.data()) + ".hl7";
      bool ferritin_alert = false;
      const std::string ferritin = ferritin_value(index, ferritin_alert);
      const int homocysteine = 4 + index % 9;
      const std::string hcy = std::to_string(homocysteine) + ".2";
      // The sender's clock is UTC-5: the same instant, written as local time with its offset.
      const std::string t = format_time(when - std::chrono::hours(5), false, "-0500");
      const std::string id = std::to_string(700000 + index);
      file.bytes = "MSH|^~\\&|LAB|GEN|LABWATCH|CLINIC|" + t + "||ORU^R01|GEN" + id + "|P|2.3\r";
      file.bytes += "PID|1||" + who.mrn + "^^^GEN^MR||" + who.family + "^" + who.given + "||" +
                    who.birth_hl7 + "|" + who.sex + "\r";
      file.bytes += "OBR|1|ORD" + id + "|ACC" + id + "^GEN|7444^PANEL^L|||" + t +
                    "|||||||||1234567890^NOTREAL^DOCTOR\r";
      file.bytes += "OBX|1|NM|2276-4^FERRITIN^LN||" + ferritin + "|ug/L|16-232||||F|||" + t + "\r";
      file.bytes += "OBX|2|NM|13965-9^HOMOCYSTEINE^LN||" + hcy + "|umol/L|<11.4||||F|||" + t + "\r";
      expect("ferritin", ferritin, "ng/mL", "", ferritin_alert);
      expect("homocysteine", hcy, "umol/L", "", homocysteine < 6 || homocysteine >= 8);
      break;
    }
    case FeedKind::csv_partial: {
      file.name = std::string(stem.data()) + ".csv";
      file.whole = false;
      bool alert = false;
      const std::string value = ferritin_value(index, alert);
      file.bytes = std::string(kCsvHeader) +
                   csv_row(who, "Ferritin", "2276-4", value, "ng/mL", "15-150", utc) +
                   csv_row(who, "Homocysteine", "13965-9", "n/a", "umol/L", "0-15", utc);
      expect("ferritin", value, "ng/mL", "", alert);
      break;
    }
    case FeedKind::garbage:
      file.name = std::string(stem.data()) + ".hl7";
      file.whole = false;
      file.bytes = "\x01\x02\x03 labwatch test: not a lab file " + std::to_string(index) + "\n";
      break;
    case FeedKind::copy: {
      const FeedFile original = make_feed_file(index - 5, feed_kind(index - 5));
      file.name =
          std::string(stem.data()) + "_copy" + original.name.substr(original.name.rfind('.'));
      file.bytes = original.bytes;
      file.original = original.name;
      break;
    }
  }
  for (ExpectedRow& row : file.rows) {
    row.source_file = file.name;
  }
  return file;
}

// A CSV export of `rows` ferritin results of one patient, a minute apart from the time of file
// `index`: large enough that its transaction needs hundreds of database pages.
inline FeedFile make_bulk_file(int index, int rows) {
  using namespace feed_detail;
  const int p = index % kFeedPatients;
  const Patient who = patient(p);
  FeedFile file;
  std::array<char, 32> name{};
  std::snprintf(name.data(), name.size(), "gen_%05d_bulk.csv", index);
  file.name = name.data();
  file.bytes = kCsvHeader;
  for (int r = 0; r < rows; ++r) {
    const std::string time = format_time(collected(index) + std::chrono::minutes(r), true, "Z");
    bool alert = false;
    const std::string value = ferritin_value(index + r, alert);
    file.bytes += csv_row(who, "Ferritin", "2276-4", value, "ng/mL", "15-150", time);
    file.rows.push_back(
        {file.name, "GEN|" + who.mrn, "ferritin", value, "ng/mL", time, "", alert, p});
  }
  return file;
}

// Files 0 .. count-1 of the standard feed (feed_kind).
inline std::vector<FeedFile> make_feed(int count) {
  std::vector<FeedFile> out;
  out.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    out.push_back(make_feed_file(i, feed_kind(i)));
  }
  return out;
}

// Where each name's results are expected: a copy's results are its original's, and whichever of
// the two is read first stores them. Maps every name of the feed to the name of its original.
inline std::map<std::string, std::string> original_names(const std::vector<FeedFile>& feed) {
  std::map<std::string, std::string> out;
  for (const FeedFile& f : feed) {
    out[f.name] = f.original.empty() ? f.name : f.original;
  }
  return out;
}

}  // namespace labwatch::test
