// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL schema against the SQLite one, and its migration by several sites at once.
#include <SQLiteCpp/SQLiteCpp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/connect.hpp"
#include "storage/identity_store.hpp"
#include "storage/sql.hpp"
#include "storage/sql_postgres.hpp"
#include "storage/store.hpp"
#include "storage/store_fixture.hpp"
#include "support/pg_database.hpp"

namespace {

using labwatch::storage::Access;
using labwatch::storage::open_existing;
using labwatch::storage::open_store;
using labwatch::storage::release_schema_version;
using labwatch::storage::stored_schema_version;
using labwatch::storage::testing::TempDir;
using labwatch::testing::PgDatabase;
namespace sql = labwatch::storage::sql;

std::set<std::string> rows(sql::Database& db, const std::string& query) {
  std::set<std::string> out;
  sql::Statement statement(db, query);
  while (statement.step()) {
    out.insert(statement.column(0).as_string());
  }
  return out;
}

}  // namespace

TEST_CASE("The PostgreSQL schema has the tables, columns and indexes of the SQLite one",
          "[storage][pg]") {
  TempDir dir;
  const std::string file = dir.file("labwatch.db");
  open_store(file);
  PgDatabase pg;
  open_store(pg.uri());

  const auto sqlite = open_existing(file, Access::read_only);
  const auto postgresql = open_existing(pg.uri(), Access::read_only);
  const std::set<std::string> sqlite_columns =
      rows(*sqlite,
           "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p "
           "WHERE m.type = 'table'");
  const std::set<std::string> postgresql_columns =
      rows(*postgresql,
           "SELECT table_name || '.' || column_name FROM information_schema.columns "
           "WHERE table_schema = current_schema() AND table_name <> 'labwatch_schema'");
  REQUIRE(sqlite_columns.size() > 100);
  CHECK(postgresql_columns == sqlite_columns);

  // Named indexes; the unnamed ones of PRIMARY KEY and UNIQUE constraints are compared through
  // the behaviour the storage suite checks on both backends.
  const std::set<std::string> sqlite_indexes = rows(
      *sqlite,
      "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'");
  const std::set<std::string> postgresql_indexes =
      rows(*postgresql,
           "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
           "AND indexname NOT IN (SELECT conname FROM pg_constraint)");
  REQUIRE(sqlite_indexes.size() > 10);
  CHECK(postgresql_indexes == sqlite_indexes);

  CHECK(stored_schema_version(*sqlite) == release_schema_version());
  CHECK(stored_schema_version(*postgresql) == release_schema_version());
  CHECK(labwatch::storage::postgresql_migrations().back().version == release_schema_version());
}

TEST_CASE("Daemons of several sites opening one new PostgreSQL database migrate it once",
          "[storage][pg]") {
  PgDatabase pg;
  std::vector<std::string> errors(4);
  std::vector<std::thread> sites;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    sites.emplace_back([&pg, &errors, i] {
      try {
        open_store(pg.uri());
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (std::thread& site : sites) {
    site.join();
  }
  for (const std::string& error : errors) {
    CHECK(error == "");
  }
  const auto db = open_existing(pg.uri(), Access::read_only);
  CHECK(db->query_int64("SELECT count(*) FROM labwatch_schema") ==
        static_cast<std::int64_t>(labwatch::storage::postgresql_migrations().size()));
  CHECK(stored_schema_version(*db) == release_schema_version());
}

TEST_CASE("A PostgreSQL URL with a password is refused, and its logged form hides it",
          "[storage][postgresql_url]") {
  CHECK_FALSE(sql::check_postgresql_url("postgresql://labwatch@db.example/labwatch").size() > 0);
  CHECK(sql::check_postgresql_url("postgresql://labwatch:s3cret@db.example/labwatch")
            .starts_with("the PostgreSQL URL carries a password"));
  CHECK(sql::check_postgresql_url("postgresql:///labwatch?host=/run/pg&password=s3cret")
            .starts_with("the PostgreSQL URL carries a password"));
  CHECK(sql::redact_postgresql_url("postgresql://labwatch:s3cret@db.example/labwatch") ==
        "postgresql://labwatch:***@db.example/labwatch");
  CHECK(sql::redact_postgresql_url(
            "postgresql:///l?host=/run/pg&password=s3cret&sslmode=verify-full") ==
        "postgresql:///l?host=/run/pg&password=***&sslmode=verify-full");
  CHECK_THROWS_WITH(sql::PostgresDatabase("postgresql://u:s3cret@localhost/x"),
                    Catch::Contains("passfile") && !Catch::Contains("s3cret"));
}

TEST_CASE("to_postgresql_placeholders numbers ? and ?N and leaves literals and comments alone",
          "[storage][postgresql_url]") {
  int parameters = 0;
  CHECK(sql::to_postgresql_placeholders("SELECT ? , ?, '?', \"a?\" -- ?\n, ?", &parameters) ==
        "SELECT $1 , $2, '?', \"a?\" -- ?\n, $3");
  CHECK(parameters == 3);
  CHECK(sql::to_postgresql_placeholders("WHERE a = ?2 AND b = ?1 OR c = ?", &parameters) ==
        "WHERE a = $2 AND b = $1 OR c = $2");
  CHECK(parameters == 2);
  CHECK(sql::to_postgresql_placeholders("SELECT 'it''s ?'", &parameters) == "SELECT 'it''s ?'");
  CHECK(parameters == 0);
}

namespace {

// Ends every other connection to `uri`'s database, as a restart of the server or a dropped
// network does to the store's connection.
void drop_other_connections(const std::string& uri) {
  const auto admin = labwatch::testing::pg_connect(uri);
  labwatch::testing::pg_exec(admin.get(),
                             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()");
}

}  // namespace

TEST_CASE(
    "A PostgreSQL store whose connection dropped reconnects, and a file cut off in its "
    "transaction is stored once when done again",
    "[storage][pg]") {
  using labwatch::storage::is_busy;
  using labwatch::storage::is_unreachable;
  using labwatch::storage::testing::ingest;
  using labwatch::storage::testing::person;
  using labwatch::storage::testing::report;
  using labwatch::storage::testing::result;
  PgDatabase pg;
  auto store = open_store(pg.uri());
  const auto patient = person("SGH", "100", "Novak", "Hana", "1970-03-12", 'F');
  ingest(*store, "one.hl7",
         {report("SGH", "M1", 1, patient, {result("ferritin", 40, "ng/mL", "O1")})});

  // Between transactions: the first statement meets the dropped connection and says so; the
  // next transaction connects again.
  drop_other_connections(pg.uri());
  const auto two = [&] {
    return ingest(*store, "two.hl7",
                  {report("SGH", "M2", 2, patient, {result("zinc", 40, "ug/dL", "O2")})});
  };
  try {
    two();
  } catch (const std::exception& e) {
    CHECK(is_unreachable(e));
    CHECK_FALSE(is_busy(e));
    CHECK(two().results_stored == 1);
  }
  CHECK(store->current_results().size() == 2);

  // Inside a file's transaction: its work is gone with the connection, nothing of it is kept, and
  // the file done again is stored once.
  const auto three = [&](bool cut) {
    auto tx = store->begin_file(labwatch::storage::testing::file_named("three.hl7"),
                                labwatch::storage::testing::default_targets());
    tx->add_report(report("SGH", "M3", 3, patient, {result("folate", 5, "ng/mL", "O3")}));
    if (cut) {
      drop_other_connections(pg.uri());
    }
    tx->add_report(report("SGH", "M4", 4, patient, {result("homocysteine", 12, "umol/L", "O4")}));
    return tx->commit();
  };
  bool unreachable = false;
  try {
    three(true);
  } catch (const std::exception& e) {
    unreachable = is_unreachable(e);
  }
  CHECK(unreachable);
  CHECK(open_existing(pg.uri(), Access::read_only)
            ->query_int64("SELECT count(*) FROM files WHERE name = 'three.hl7'") == 0);
  CHECK(three(false).results_stored == 2);
  CHECK(store->current_results().size() == 4);
  // Done once more (a commit whose answer was lost): known, nothing stored twice.
  CHECK(three(false).already_known);
  CHECK(store->current_results().size() == 4);
}

TEST_CASE(
    "A site's role with the README's grants ingests, mails, silences and reviews, and cannot "
    "change the schema",
    "[storage][pg]") {
  using labwatch::storage::testing::default_targets;
  using labwatch::storage::testing::from_now;
  using labwatch::storage::testing::ingest;
  using labwatch::storage::testing::person;
  using labwatch::storage::testing::report;
  using labwatch::storage::testing::result;
  const auto as_role = [](const std::string& uri, const std::string& role) {
    const std::size_t user = uri.find("user=");
    REQUIRE(user != std::string::npos);
    return uri.substr(0, user) + "user=" + role;
  };
  std::string owner;
  std::string site;
  std::string cluster;
  {
    PgDatabase pg;
    cluster = pg.cluster_uri("postgres");
    owner = pg.name() + "_owner";
    site = pg.name() + "_north";
    {
      const auto admin = labwatch::testing::pg_connect(pg.uri());
      labwatch::testing::pg_exec(admin.get(), "CREATE ROLE " + owner + " LOGIN");
      labwatch::testing::pg_exec(admin.get(), "ALTER DATABASE " + pg.name() + " OWNER TO " + owner);
      labwatch::testing::pg_exec(admin.get(), "CREATE ROLE " + site + " LOGIN");
      labwatch::testing::pg_exec(admin.get(), "REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    }
    // The owner migrates the schema once; then the grants of README's "Several sites on one
    // PostgreSQL database", as the owner.
    open_store(as_role(pg.uri(), owner));
    {
      const auto db = open_existing(as_role(pg.uri(), owner), Access::read_write);
      db->exec("GRANT CONNECT ON DATABASE " + pg.name() + " TO " + site);
      db->exec("GRANT USAGE ON SCHEMA public TO " + site);
      db->exec("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + site);
      db->exec("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO " + site);
    }

    labwatch::storage::StoreOptions options;
    options.site = "north:/srv/inbox";
    auto store = open_store(as_role(pg.uri(), site), options);
    const auto patient = person("SGH", "100", "Novak", "Hana", "1970-03-12", 'F');
    const auto other = person("LCA", "7", "Svoboda", "Jana", "1981-06-02", 'F');
    labwatch::storage::AlertPolicy targets = default_targets();
    labwatch::storage::Recipient recipient;
    recipient.email = "dr.b@clinic.example";
    targets.routing.by_facility["SGH"].push_back(recipient);
    CHECK(ingest(*store, "one.hl7",
                 {report("SGH", "M1", 1, patient, {result("ferritin", 40, "ng/mL", "O1")}),
                  report("LCA", "M2", 2, other, {result("zinc", 40, "ug/dL", "O2")})},
                 targets)
              .results_stored == 2);
    const auto claimed = store->claim_due_mail(from_now(86400), 10);
    REQUIRE_FALSE(claimed.empty());
    store->mark_mail_sent(claimed.front().id, from_now(0));
    CHECK(store->reset_interrupted_mail() >= 0);
    labwatch::storage::NewSilence silence;
    silence.person_id = store->current_results().front().person_id;
    silence.analyte = "ferritin";
    silence.until = from_now(86400);
    silence.reason = "test";
    silence.now = from_now(0);
    CHECK(store->add_silence(silence) > 0);
    CHECK(store->expire_silence(1, from_now(0)));
    const auto review = labwatch::storage::open_identity_store(as_role(pg.uri(), site), {});
    const auto persons = store->persons();
    REQUIRE(persons.size() == 2);
    labwatch::storage::ReviewAction action;
    action.now = from_now(0);
    action.reason = "test of the grants";
    CHECK(review->merge(persons[0].person_id, persons[1].person_id, action, default_targets())
              .moved_results == 1);
    CHECK(store->persons().size() == 1);

    // What the role cannot do: change the schema.
    const auto db = open_existing(as_role(pg.uri(), site), Access::read_write);
    CHECK_THROWS_WITH(db->exec("CREATE TABLE extra (a int)"), Catch::Contains("permission denied"));
    CHECK_THROWS_WITH(db->exec("DROP TABLE results"), Catch::Contains("must be owner"));
    CHECK_THROWS_WITH(db->exec("ALTER TABLE results ADD COLUMN extra int"),
                      Catch::Contains("must be owner"));
  }
  // Roles belong to the cluster, not to the database dropped above.
  const auto admin = labwatch::testing::pg_connect(cluster);
  labwatch::testing::pg_exec(admin.get(), "DROP ROLE " + site);
  labwatch::testing::pg_exec(admin.get(), "DROP ROLE " + owner);
}

TEST_CASE("with_default_tls asks for verify-full on another host unless the URL names a mode",
          "[storage][postgresql_url]") {
  using sql::with_default_tls;
  CHECK(with_default_tls("postgresql://db.example.org/labwatch") ==
        "postgresql://db.example.org/labwatch?sslmode=verify-full");
  CHECK(with_default_tls("postgresql://lw@db.example.org:5433/labwatch?sslrootcert=/etc/ca.pem") ==
        "postgresql://lw@db.example.org:5433/labwatch?sslrootcert=/etc/ca.pem&sslmode=verify-full");
  CHECK(with_default_tls("postgresql:///labwatch?host=10.0.0.7") ==
        "postgresql:///labwatch?host=10.0.0.7&sslmode=verify-full");
  // A mode the URL names is kept (check-config warns of a weaker one); local servers need none.
  CHECK(with_default_tls("postgresql://db.example.org/labwatch?sslmode=require") ==
        "postgresql://db.example.org/labwatch?sslmode=require");
  for (const char* local :
       {"postgresql:///labwatch", "postgresql:///labwatch?host=/run/postgresql",
        "postgresql://localhost/labwatch", "postgresql://127.0.0.1:5432/labwatch",
        "postgresql://[::1]/labwatch", "postgresql://%2Frun%2Fpostgresql/labwatch"}) {
    CHECK(with_default_tls(local) == local);
  }
}

TEST_CASE(
    "A store on another host refuses a server that offers no TLS instead of going on in "
    "plain text",
    "[storage][postgresql_url]") {
  // A server at 127.0.0.2 (a name is_local_host does not take for this machine) that answers
  // libpq's SSLRequest with 'N', as a PostgreSQL without TLS does. libpq's own default (prefer)
  // would then go on in plain text; labwatch's verify-full must refuse.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(0x7F000002);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  std::thread server([listener] {
    const int client = ::accept(listener, nullptr, nullptr);
    if (client >= 0) {
      char request[8];
      if (::recv(client, request, sizeof request, MSG_WAITALL) == sizeof request) {
        static_cast<void>(::send(client, "N", 1, MSG_NOSIGNAL));
      }
      ::close(client);
    }
  });
  const std::string url = "postgresql://127.0.0.2:" + std::to_string(ntohs(address.sin_port)) +
                          "/labwatch?connect_timeout=5";
  CHECK_THROWS_WITH(sql::PostgresDatabase(url),
                    Catch::Contains("SSL") && Catch::Contains("cannot connect to"));
  server.join();
  ::close(listener);
}
