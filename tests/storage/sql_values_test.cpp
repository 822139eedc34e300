// SPDX-License-Identifier: Apache-2.0
// Tests of the column conversions: a sender's time written as text and read back; alert statuses
// read from their column and the SQL condition that selects the active ones.
#include "storage/sql_values.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "clinical/alert_status.hpp"
#include "storage/sql_sqlite.hpp"

namespace {

using labwatch::clinical::AlertStatus;
using labwatch::clinical::kAlertStatuses;
using labwatch::parsers::DateTime;
using labwatch::storage::active_alert_condition;
using labwatch::storage::format_datetime;
using labwatch::storage::parse_datetime;
using labwatch::storage::read_alert_status;
using Precision = DateTime::Precision;

}  // namespace

TEST_CASE("parse_datetime reads back every layout format_datetime writes", "[storage][values]") {
  const DateTime year{2025, 1, 1, 0, 0, 0, 0, Precision::year, false, 0};
  const DateTime month{2025, 3, 1, 0, 0, 0, 0, Precision::month, false, 0};
  const DateTime day{2025, 3, 9, 0, 0, 0, 0, Precision::day, false, 0};
  const DateTime minute{2025, 3, 9, 13, 5, 0, 0, Precision::minute, false, 0};
  const DateTime second_west{2025, 3, 9, 13, 5, 7, 0, Precision::second, true, -300};
  const DateTime minute_east{1999, 12, 31, 23, 59, 0, 0, Precision::minute, true, 330};
  const DateTime utc{2025, 3, 9, 0, 0, 1, 0, Precision::second, true, 0};
  for (const DateTime& time : {year, month, day, minute, second_west, minute_east, utc}) {
    const std::string text = format_datetime(time);
    INFO(text);
    CHECK(parse_datetime(text) == time);
  }
  CHECK(format_datetime(second_west) == "2025-03-09T13:05:07-05:00");
  CHECK(format_datetime(minute_east) == "1999-12-31T23:59+05:30");
}

TEST_CASE("parse_datetime keeps what the text kept of an hour or a fraction", "[storage][values]") {
  const DateTime hour{2025, 3, 9, 13, 0, 0, 0, Precision::hour, true, 60};
  const DateTime read_hour = parse_datetime(format_datetime(hour));
  CHECK(read_hour.precision == Precision::minute);
  CHECK(read_hour.hour == 13);
  CHECK(read_hour.offset_minutes == 60);
  const DateTime fraction{2025, 3, 9, 13, 5, 7, 250'000'000, Precision::fraction, false, 0};
  const DateTime read_fraction = parse_datetime(format_datetime(fraction));
  CHECK(read_fraction.precision == Precision::second);
  CHECK(read_fraction.second == 7);
  CHECK(read_fraction.nanosecond == 0);
}

TEST_CASE("parse_datetime reads text it never writes as no time", "[storage][values]") {
  for (const char* text :
       {"", "2025-", "202", "-2025", "+202-03-09", "2025-3-09", "2025-03-09 13:05", "2025-03-09T13",
        "2025-03-09T13:05:", "2025-03-09T13:05:7", "2025-03-09T13:05Z", "2025-03-09T13:05+0500",
        "2025-03-09T13:05+05:00x", "2025-03-09T13:05-5:00", "2025/03/09", "abcd"}) {
    INFO(text);
    CHECK(parse_datetime(text).empty());
  }
}

TEST_CASE("active_alert_condition lists the active statuses, ORed, as the queries had them",
          "[storage][values][alert_status]") {
  CHECK(active_alert_condition("a.state") ==
        "(a.state = 'unmailed' OR a.state = 'historical' OR a.state = 'preliminary' OR "
        "a.state = 'silenced' OR a.state = 'pending' OR a.state = 'sent' OR a.state = 'failed')");
}

TEST_CASE("active_alert_condition selects exactly the statuses clinical::is_active holds for",
          "[storage][sqlite][values][alert_status]") {
  labwatch::storage::sql::SqliteDatabase db(SQLite::Database(":memory:", SQLite::OPEN_READWRITE));
  db.exec("CREATE TABLE alerts (state TEXT NOT NULL)");
  labwatch::storage::sql::Statement insert(db, "INSERT INTO alerts (state) VALUES (?)");
  for (const AlertStatus status : kAlertStatuses) {
    insert.reset();
    insert.bind(1, std::string(to_string(status)));
    insert.exec();
  }
  insert.reset();
  insert.bind(1, "sending");  // an outbox state, never an alert's
  insert.exec();
  std::vector<AlertStatus> selected;
  labwatch::storage::sql::Statement query(
      db, "SELECT state FROM alerts WHERE " + active_alert_condition("state") + " ORDER BY rowid");
  while (query.step()) {
    selected.push_back(read_alert_status(query.column(0)));
  }
  std::vector<AlertStatus> active;
  for (const AlertStatus status : kAlertStatuses) {
    if (is_active(status)) {
      active.push_back(status);
    }
  }
  CHECK(selected == active);
  CHECK(active.size() == 7);
}

TEST_CASE("read_alert_status reads every stored spelling and refuses any other",
          "[storage][sqlite][values][alert_status]") {
  labwatch::storage::sql::SqliteDatabase db(SQLite::Database(":memory:", SQLite::OPEN_READWRITE));
  for (const AlertStatus status : kAlertStatuses) {
    labwatch::storage::sql::Statement query(db, "SELECT ?");
    query.bind(1, std::string(to_string(status)));
    REQUIRE(query.step());
    CHECK(read_alert_status(query.column(0)) == status);
  }
  for (const char* text : {"Pending", "sending", "", "resolved "}) {
    labwatch::storage::sql::Statement query(db, "SELECT ?");
    query.bind(1, text);
    REQUIRE(query.step());
    CHECK_THROWS_WITH(read_alert_status(query.column(0)),
                      "alerts.state holds an unknown value '" + std::string(text) + "'");
  }
}
