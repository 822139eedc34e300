// SPDX-License-Identifier: Apache-2.0
// Config: the plain structs the XML config loads into. Every element has a default.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/rules.hpp"
#include "parsers/csv_parser.hpp"
#include "parsers/lab_numbers.hpp"
#include "parsers/text_charset.hpp"

namespace labwatch::config {

// A sender: which files come from it, whose patient ids it uses, and its clock (PRODUCT.md).
struct Source {
  std::string facility;
  std::string authority;
  std::string timezone;                 // IANA name; empty: <intake default-timezone> applies
  std::vector<std::string> file_globs;  // fnmatch patterns on the file name, from files="a*;b*"
  // decimal="point|comma": how this sender writes fractions. Unset, each file's own numbers tell
  // ("45,2"), and a number that stays ambiguous ("1,234") is refused.
  parsers::DecimalMark decimal = parsers::DecimalMark::unknown;
  // How its CSV dates NN/NN/YYYY read; unknown: as the file's own dates prove, else refused.
  parsers::DateOrder date_order = parsers::DateOrder::unknown;
  parsers::TextEncoding charset;  // of its CSV files; detect: UTF-8 if valid, else Windows-1252
};

struct Paths {
  std::string inbox = "inbox";
  std::string processed = "processed";
  std::string failed = "failed";
  std::string database = "labwatch.db";
};

struct Intake {
  std::uint64_t max_file_bytes = 256ull << 20;  // larger files are refused unread
  std::chrono::milliseconds settle{200};        // quiet time after IN_CLOSE_WRITE
  std::chrono::seconds rescan{60};  // periodic rescan (0 = off): a safety net, and network shares
  // IANA zone of naive times from a source without `timezone`, or from a file that matches no
  // source; empty: such times are refused (unknown_timezone). `labwatch init` writes the machine's.
  std::string default_timezone;
};

enum class PhiLevel { minimal, full };

struct Practitioner {
  std::string id;
  std::string name;
  std::string email;
  PhiLevel phi = PhiLevel::minimal;
  std::vector<std::string> provider_ids;  // OBR-16 ids routed to this practitioner
  std::vector<std::string> facilities;    // facilities routed to this practitioner
};

struct Mail {
  std::string
      smtp_url;  // smtp://host:port (STARTTLS required) or smtps://host:port; empty = no mail
  bool allow_plaintext = false;  // plain SMTP to a non-loopback relay only when said here
  std::string from = "labwatch@localhost";
  std::string username;
  std::string password_file;  // read at send time, never logged
  std::string ca_file;        // extra CA bundle for a relay with a private CA; empty = system store
  std::string default_recipient;
  std::chrono::seconds collect_wait{60};  // wait for the rest of a panel before sending
  std::chrono::seconds retry_min{30};
  std::chrono::seconds retry_max{3600};
  std::chrono::seconds timeout{30};
  // Full-PHI recipients get the patient's trend report in the alert mail's HTML part; minimal-PHI
  // recipients never do.
  bool attach_report = false;
  // IANA zone the mail shows times in (the clinic's); empty: the machine's zone.
  std::string timezone;
};

// Which alerts are mailed (<alerts>); every alert is recorded and listed whatever they say.
struct Alerts {
  // Alerts on results collected more than this many days before their ingest are 'historical':
  // never mailed, so that importing past results sends no storm of old news.
  int mail_max_age_days = 30;
  // Mail a preliminary value at once; by default it is mailed when the lab makes it final.
  bool mail_preliminary = false;
};

struct Config {
  std::string path;  // the file it was loaded from; empty for the built-in defaults
  Paths paths;
  Intake intake;
  std::vector<Source> sources;
  clinical::AnalyteCatalogue catalogue = clinical::AnalyteCatalogue::builtin();
  std::map<std::string, clinical::OptimalRule, std::less<>> targets;  // analyte key -> rule
  std::map<std::string, std::vector<clinical::TrendRule>, std::less<>>
      trends;  // analyte key -> trend rules
  parsers::CsvVocabulary csv;
  Mail mail;
  std::vector<Practitioner> practitioners;
  Alerts alerts;
};

}  // namespace labwatch::config
