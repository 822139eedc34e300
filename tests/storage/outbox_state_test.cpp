// SPDX-License-Identifier: Apache-2.0
// Tests of the outbox item states: their spellings, the strict read-back of outbox.state, and the
// schema's agreement with the vocabulary.
#include "storage/outbox_state.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <catch2/catch.hpp>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/admin_queries.hpp"
#include "storage/sql_sqlite.hpp"
#include "storage/sql_values.hpp"
#include "storage/store_fixture.hpp"

namespace {

using labwatch::storage::AlertPolicy;
using labwatch::storage::kOutboxStates;
using labwatch::storage::OutboxState;
using labwatch::storage::parse_outbox_state;
using labwatch::storage::read_intake_status;
using labwatch::storage::read_outbox_state;
using labwatch::storage::Recipient;
using labwatch::storage::testing::default_targets;
using labwatch::storage::testing::Fixture;
using labwatch::storage::testing::ingest;
using labwatch::storage::testing::kT0;
using labwatch::storage::testing::person;
using labwatch::storage::testing::report;
using labwatch::storage::testing::result;

// Every state with the one spelling the database stores and `labwatch outbox` prints.
const std::vector<std::pair<OutboxState, std::string_view>> kSpellings = {
    {OutboxState::pending, "pending"},
    {OutboxState::sending, "sending"},
    {OutboxState::sent, "sent"},
    {OutboxState::failed, "failed"},
};

std::set<std::string> enum_spellings() {
  std::set<std::string> out;
  for (const OutboxState state : kOutboxStates) {
    out.emplace(to_string(state));
  }
  return out;
}

// A file whose ferritin alert queues one mail to one practitioner.
void queue_one_mail(Fixture& f) {
  AlertPolicy targets = default_targets();
  Recipient r;
  r.email = "dr.b@clinic.example";
  targets.routing.by_facility["SGH"].push_back(r);
  ingest(*f.store, "1.hl7",
         {report("SGH", "M1", kT0, person("SGH", "SGH1", "EXAMPLAR", "HANA J", "1994-06-08", 'F'),
                 {result("ferritin", 40, "ng/mL", "S1")})},
         targets);
}

}  // namespace

TEST_CASE("OutboxState has one spelling per state, and reads back from it",
          "[storage][outbox_state]") {
  REQUIRE(kOutboxStates.size() == kSpellings.size());
  for (std::size_t i = 0; i < kSpellings.size(); ++i) {
    const auto& [state, spelling] = kSpellings[i];
    INFO(spelling);
    CHECK(kOutboxStates[i] == state);
    CHECK(to_string(state) == spelling);
    CHECK(parse_outbox_state(spelling) == state);
  }
}

TEST_CASE("parse_outbox_state refuses any other text: no case folding, trimming or alert states",
          "[storage][outbox_state]") {
  for (const char* text : {"", "Pending", "SENT", " pending", "failed ", "send", "sending\n",
                           "queued", "unmailed", "resolved", "current"}) {
    INFO('\'' << text << '\'');
    CHECK_FALSE(parse_outbox_state(text).has_value());
  }
}

TEST_CASE("read_outbox_state reads every stored spelling and refuses any other, naming the column",
          "[storage][sqlite][values][outbox_state]") {
  labwatch::storage::sql::SqliteDatabase db(SQLite::Database(":memory:", SQLite::OPEN_READWRITE));
  for (const auto& [state, spelling] : kSpellings) {
    labwatch::storage::sql::Statement query(db, "SELECT ?");
    query.bind(1, std::string(spelling));
    REQUIRE(query.step());
    CHECK(read_outbox_state(query.column(0)) == state);
  }
  for (const char* text : {"Pending", "unmailed", "", "sent "}) {
    labwatch::storage::sql::Statement query(db, "SELECT ?");
    query.bind(1, text);
    REQUIRE(query.step());
    CHECK_THROWS_WITH(read_outbox_state(query.column(0)),
                      "outbox.state holds an unknown value '" + std::string(text) + "'");
  }
}

TEST_CASE("The outbox schema admits exactly the OutboxState spellings and indexes only them",
          "[storage][sqlite][outbox_state]") {
  Fixture f;
  SQLite::Database db(f.path);
  // The CHECK of outbox.state, and the partial indexes of the outbox: every state literal in them.
  SQLite::Statement schema(db,
                           "SELECT sql FROM sqlite_master WHERE tbl_name = 'outbox' AND sql IS "
                           "NOT NULL ORDER BY type DESC, name");
  std::string table;
  std::set<std::string> in_indexes;
  const std::regex literal(R"(\bstate\s*(?:=|<>)\s*'([^']*)')");
  while (schema.executeStep()) {
    const std::string sql = schema.getColumn(0).getString();
    if (sql.starts_with("CREATE TABLE")) {
      table = sql;
      continue;
    }
    for (std::sregex_iterator it(sql.begin(), sql.end(), literal), end; it != end; ++it) {
      in_indexes.insert((*it)[1].str());
    }
  }
  REQUIRE_FALSE(table.empty());
  const std::size_t column = table.find("state ");
  REQUIRE(column != std::string::npos);
  const std::size_t check_end = table.find("),", column);
  REQUIRE(check_end != std::string::npos);
  const std::string check = table.substr(column, check_end - column);
  std::set<std::string> in_check;
  for (std::sregex_iterator it(check.begin(), check.end(), literal), end; it != end; ++it) {
    in_check.insert((*it)[1].str());
  }
  CHECK(in_check == enum_spellings());
  REQUIRE_FALSE(in_indexes.empty());
  for (const std::string& spelling : in_indexes) {
    INFO(spelling);
    CHECK(parse_outbox_state(spelling).has_value());
  }
}

TEST_CASE("Store outbox and status refuse an outbox state labwatch never writes",
          "[storage][sqlite][outbox_state]") {
  Fixture f;
  queue_one_mail(f);
  REQUIRE(f.store->outbox(false).size() == 1);
  CHECK(f.store->outbox(false)[0].state == OutboxState::pending);
  CHECK(read_intake_status(f.path, 0).outbox_pending == 1);
  {
    // A database edited by hand (its CHECK switched off) or written by a later labwatch.
    SQLite::Database db(f.path, SQLite::OPEN_READWRITE);
    db.exec("PRAGMA ignore_check_constraints = ON");
    db.exec("UPDATE outbox SET state = 'queued'");
  }
  CHECK_THROWS_WITH(f.store->outbox(true), "outbox.state holds an unknown value 'queued'");
  CHECK_THROWS_WITH(read_intake_status(f.path, 0), "outbox.state holds an unknown value 'queued'");
}
