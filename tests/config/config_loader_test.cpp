// SPDX-License-Identifier: Apache-2.0
// Tests for load_config/parse_config: defaults, every element, and a clear error for each kind of
// mistake.
#include "config/config_loader.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

using labwatch::config::Config;
using labwatch::config::ConfigError;
using labwatch::config::parse_config;

namespace {

Config must_parse(const std::string& xml) {
  auto result = parse_config(xml, "/etc/labwatch/labwatch.xml", "/etc/labwatch");
  if (!result) {
    FAIL("unexpected error: " << result.error().to_string());
  }
  return std::move(result.value());
}

ConfigError must_fail(const std::string& xml) {
  auto result = parse_config(xml, "/etc/labwatch/labwatch.xml", "/etc/labwatch");
  REQUIRE_FALSE(result.has_value());
  return result.error();
}

}  // namespace

TEST_CASE("parse_config accepts a config holding only <sources>", "[config]") {
  const Config c = must_parse(
      "<labwatch>\n  <sources>\n"
      "    <source facility=\"QDX\" authority=\"QDXA\" timezone=\"America/New_York\" "
      "files=\"a_qdx*;e_qdx*\"/>\n"
      "  </sources>\n</labwatch>\n");
  REQUIRE(c.sources.size() == 1);
  CHECK(c.sources[0].facility == "QDX");
  CHECK(c.sources[0].authority == "QDXA");
  CHECK(c.sources[0].timezone == "America/New_York");
  REQUIRE(c.sources[0].file_globs.size() == 2);
  CHECK(c.sources[0].file_globs[1] == "e_qdx*");
  // Defaults: paths beside the config file; catalogue targets present; a rescan every 60 s.
  CHECK(c.paths.inbox == "/etc/labwatch/inbox");
  CHECK(c.intake.rescan.count() == 60);
  CHECK(c.targets.count("ferritin") == 1);
  CHECK(c.targets.at("ferritin").text == "ge:50;ideal:gt:70");
  CHECK(c.catalogue.by_key("rbc_magnesium") != nullptr);
}

TEST_CASE("parse_config reads a source's optional timezone, date order and charset", "[config]") {
  const Config c = must_parse(
      "<labwatch><intake default-timezone=\"Europe/Berlin\"/><sources>"
      "<source facility=\"A\" files=\"a*\" date-order=\"dmy\" charset=\"windows-1252\"/>"
      "<source facility=\"B\" files=\"b*\" timezone=\"America/Chicago\" date-order=\"mdy\" "
      "charset=\"utf-8\"/>"
      "<source facility=\"C\" files=\"c*\"/></sources></labwatch>");
  CHECK(c.intake.default_timezone == "Europe/Berlin");
  REQUIRE(c.sources.size() == 3);
  CHECK(c.sources[0].timezone.empty());
  CHECK(c.sources[0].date_order == labwatch::parsers::DateOrder::dmy);
  CHECK(c.sources[0].charset.kind == labwatch::parsers::TextEncoding::Kind::byte_set);
  CHECK(c.sources[0].charset.bytes == labwatch::parsers::ByteCharset::windows_1252);
  CHECK(c.sources[1].date_order == labwatch::parsers::DateOrder::mdy);
  CHECK(c.sources[1].charset.kind == labwatch::parsers::TextEncoding::Kind::utf8);
  CHECK(c.sources[2].date_order == labwatch::parsers::DateOrder::unknown);
  CHECK(c.sources[2].charset.kind == labwatch::parsers::TextEncoding::Kind::detect);

  SECTION("timezone_for: the source's zone, else the default, for unmatched files too") {
    using labwatch::config::timezone_for;
    CHECK(timezone_for(c, &c.sources[0]) == "Europe/Berlin");
    CHECK(timezone_for(c, &c.sources[1]) == "America/Chicago");
    CHECK(timezone_for(c, nullptr) == "Europe/Berlin");
  }
  SECTION("with neither, no zone: naive times stay refused") {
    const Config bare =
        must_parse("<labwatch><sources><source facility=\"A\"/></sources></labwatch>");
    CHECK(bare.intake.default_timezone.empty());
    CHECK(labwatch::config::timezone_for(bare, &bare.sources[0]).empty());
    CHECK(labwatch::config::timezone_for(bare, nullptr).empty());
  }
}

TEST_CASE("parse_config defaults the authority to the facility", "[config]") {
  const Config c = must_parse(
      "<labwatch><sources><source facility=\"SGH\" "
      "timezone=\"America/Phoenix\"/></sources></labwatch>");
  CHECK(c.sources.at(0).authority == "SGH");
  CHECK(c.sources.at(0).file_globs.empty());
}

TEST_CASE("parse_config resolves relative paths against the config directory", "[config]") {
  const Config c = must_parse(
      "<labwatch><paths inbox=\"in\" processed=\"/srv/done\" database=\"db/lw.db\"/></labwatch>");
  CHECK(c.paths.inbox == "/etc/labwatch/in");
  CHECK(c.paths.processed == "/srv/done");
  CHECK(c.paths.failed == "/etc/labwatch/failed");  // a default, resolved like the others
  CHECK(c.paths.database == "/etc/labwatch/db/lw.db");
}

TEST_CASE("parse_config keeps a database URL as written, not as a path beside the config",
          "[config]") {
  const Config c = must_parse(
      "<labwatch><paths inbox=\"in\" database=\"postgresql://db.example.org:5432/labwatch?"
      "user=lw&amp;sslmode=verify-full\"/></labwatch>");
  CHECK(c.paths.database ==
        "postgresql://db.example.org:5432/labwatch?user=lw&sslmode=verify-full");
  CHECK(c.paths.inbox == "/etc/labwatch/in");  // paths beside it are resolved still
  const Config socket = must_parse(
      "<labwatch><paths database=\"postgresql:///labwatch?host=/run/postgresql\"/></labwatch>");
  CHECK(socket.paths.database == "postgresql:///labwatch?host=/run/postgresql");
  // "://" inside a file name is no URL: the fuzz regression input database_colon_slashes.xml.
  const Config path = must_parse("<labwatch><paths database=\"db/lab://x.db\"/></labwatch>");
  CHECK(path.paths.database == "/etc/labwatch/db/lab:/x.db");  // a path, made normal
  CHECK_FALSE(labwatch::config::names_a_url("db/lab://x.db"));
  CHECK_FALSE(labwatch::config::names_a_url("://x"));
  CHECK_FALSE(labwatch::config::names_a_url("1pg://x"));
  CHECK(labwatch::config::names_a_url("postgresql://db/x"));
  CHECK(labwatch::config::names_a_url("svn+ssh://x"));
}

TEST_CASE("parse_config resolves the default paths against the config directory", "[config]") {
  SECTION("a config without <paths>: the fuzz regression input default_paths.xml") {
    std::ifstream in(std::string(LABWATCH_SOURCE_DIR) +
                     "/tests/fuzz/regression/config/default_paths.xml");
    REQUIRE(in);
    const std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto result = parse_config(xml, "/fuzz/labwatch.xml", "/fuzz");
    REQUIRE(result.has_value());
    CHECK(result->paths.inbox == "/fuzz/inbox");
    CHECK(result->paths.processed == "/fuzz/processed");
    CHECK(result->paths.failed == "/fuzz/failed");
    CHECK(result->paths.database == "/fuzz/labwatch.db");
  }
  SECTION("<paths> naming some: the others are defaults beside the file, not doubly resolved") {
    const Config c = must_parse("<labwatch><paths inbox=\"spool/in\"/></labwatch>");
    CHECK(c.paths.inbox == "/etc/labwatch/spool/in");
    CHECK(c.paths.processed == "/etc/labwatch/processed");
    CHECK(c.paths.database == "/etc/labwatch/labwatch.db");
  }
  SECTION("without a base directory every path stays as written") {
    auto result = parse_config("<labwatch><paths inbox=\"in\"/></labwatch>", "", "");
    REQUIRE(result.has_value());
    CHECK(result->paths.inbox == "in");
    CHECK(result->paths.processed == "processed");
    CHECK(result->paths.database == "labwatch.db");
  }
  SECTION("load_config takes the directory of the file it reads") {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("labwatch-config-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "labwatch.xml") << "<labwatch/>\n";
    auto result = labwatch::config::load_config((dir / "labwatch.xml").string());
    std::filesystem::remove_all(dir);
    REQUIRE(result.has_value());
    CHECK(result->paths.inbox == (dir / "inbox").string());
    CHECK(result->paths.database == (dir / "labwatch.db").string());
  }
}

TEST_CASE("parse_config reads intake, targets, csv aliases, mail and practitioners", "[config]") {
  const Config c = must_parse(R"(<labwatch>
  <intake max-file-bytes="1048576" settle-ms="50" rescan-seconds="30"/>
  <targets><target analyte="ferritin" rule="ge:70"/><trend analyte="ferritin" rule="trend:falling:0.2;trend:away:3"/></targets>
  <csv><column name="value" alias="Messwert"/></csv>
  <mail smtp="smtps://mail.example.org:465" from="labwatch@example.org" default-recipient="lab@example.org"
        retry-min-seconds="5" retry-max-seconds="60"/>
  <practitioners>
    <practitioner id="drx" name="Dr X" email="x@example.org" phi="full" providers="1234567890;42" facilities="QDX"/>
  </practitioners>
</labwatch>)");
  CHECK(c.intake.max_file_bytes == 1048576);
  CHECK(c.intake.settle.count() == 50);
  CHECK(c.intake.rescan.count() == 30);
  CHECK(c.targets.at("ferritin").text == "ge:70");
  CHECK(c.targets.at("homocysteine").text == "range:6-8");
  // A <trend> replaces the rules shipped for the analyte; the others keep theirs.
  REQUIRE(c.trends.at("ferritin").size() == 2);
  CHECK(c.trends.at("ferritin")[0].text == "trend:falling:0.2");
  CHECK(c.trends.at("ferritin")[1].text == "trend:away:3");
  REQUIRE(c.trends.at("vitamin_d_25oh").size() == 1);
  CHECK(c.trends.at("vitamin_d_25oh")[0].text == "trend:falling:30:365");
  REQUIRE(c.csv.extra.count(labwatch::parsers::CsvColumn::value) == 1);
  CHECK(c.csv.extra.at(labwatch::parsers::CsvColumn::value).at(0) == "Messwert");
  CHECK(c.mail.smtp_url == "smtps://mail.example.org:465");
  CHECK(c.mail.retry_min.count() == 5);
  CHECK_FALSE(c.mail.attach_report);  // the default
  REQUIRE(c.practitioners.size() == 1);
  CHECK(c.practitioners[0].phi == labwatch::config::PhiLevel::full);
  CHECK(c.practitioners[0].provider_ids == std::vector<std::string>{"1234567890", "42"});
}

TEST_CASE("parse_config reads <mail timezone> as an IANA zone, default the machine's",
          "[config][mail]") {
  const auto with = [](const std::string& value) {
    return "<labwatch>\n<mail smtp=\"smtp://127.0.0.1:25\" timezone=\"" + value +
           "\"/>\n</labwatch>";
  };
  CHECK(must_parse(with("Europe/Berlin")).mail.timezone == "Europe/Berlin");
  CHECK(must_parse("<labwatch>\n<mail smtp=\"smtp://127.0.0.1:25\"/>\n</labwatch>")
            .mail.timezone.empty());
  for (const char* bad : {"", "Europe/Atlantis", "CEST "}) {
    CAPTURE(bad);
    const ConfigError e = must_fail(with(bad));
    CHECK(e.line == 2);
    CHECK(e.to_string() == "/etc/labwatch/labwatch.xml:2: <mail>: unknown timezone '" +
                               std::string(bad) + "' (an IANA name like Europe/Berlin)");
  }
}

TEST_CASE("parse_config reads <mail attach-report> strictly", "[config][mail]") {
  const auto with = [](const std::string& value) {
    return "<labwatch>\n<mail smtp=\"smtp://127.0.0.1:25\" attach-report=\"" + value +
           "\"/>\n</labwatch>";
  };
  CHECK(must_parse(with("true")).mail.attach_report);
  CHECK(must_parse(with("yes")).mail.attach_report);
  CHECK_FALSE(must_parse(with("false")).mail.attach_report);
  CHECK_FALSE(must_parse(with("0")).mail.attach_report);
  for (const char* bad : {"", "TRUE", "on", "maybe", "true "}) {
    CAPTURE(bad);
    const ConfigError e = must_fail(with(bad));
    CHECK(e.line == 2);
    CHECK(e.to_string() ==
          "/etc/labwatch/labwatch.xml:2: <mail>: attach-report must be true or false");
  }
}

TEST_CASE("parse_config extends the catalogue with local codes, aliases and conversions",
          "[config]") {
  const Config c = must_parse(R"(<labwatch><catalogue>
  <analyte key="ferritin"><code>FERR</code><unit-alias>ng per mL</unit-alias><conversion unit="nmol/L" factor="445.038"/></analyte>
  <analyte key="vitamin_k" display-name="Vitamin K1" canonical-unit="ng/mL" ref-low="0.1" ref-high="2.2">
    <loinc>12345-6</loinc><name>Phylloquinone</name>
  </analyte>
</catalogue></labwatch>)");
  const auto* ferritin = c.catalogue.by_code("FERR");
  REQUIRE(ferritin != nullptr);
  CHECK(ferritin->key == "ferritin");
  CHECK(ferritin->conversions.at("nmol/L") == Approx(445.038));
  CHECK(c.catalogue.by_code("2276-4") == ferritin);
  const auto* k = c.catalogue.by_code("12345-6");
  REQUIRE(k != nullptr);
  CHECK(k->canonical_unit == "ng/mL");
  CHECK(k->ref_high.value() == Approx(2.2));
}

TEST_CASE("parse_config names the element, line and reason of each mistake", "[config]") {
  SECTION("XML syntax error with its line") {
    const ConfigError e = must_fail("<labwatch>\n<sources>\n</labwatch>\n");
    CHECK(e.line == 3);
    CHECK(e.message.find("XML syntax") != std::string::npos);
  }
  SECTION("wrong root") {
    CHECK(must_fail("<config/>").message.find("<labwatch>") != std::string::npos);
  }
  SECTION("unknown timezone") {
    const ConfigError e = must_fail(
        "<labwatch>\n<sources>\n<source facility=\"QDX\" "
        "timezone=\"Mars/Olympus\"/>\n</sources></labwatch>");
    CHECK(e.line == 3);
    CHECK(e.message ==
          "<source facility=\"QDX\">: unknown timezone 'Mars/Olympus' (an IANA name like "
          "America/New_York)");
  }
  SECTION("unknown default-timezone") {
    const ConfigError e =
        must_fail("<labwatch>\n<intake default-timezone=\"Europe/Atlantis\"/></labwatch>");
    CHECK(e.line == 2);
    CHECK(e.message ==
          "<intake>: unknown default-timezone 'Europe/Atlantis' (an IANA name like "
          "America/New_York)");
  }
  SECTION("date-order other than mdy or dmy") {
    CHECK(must_fail("<labwatch><sources><source facility=\"QDX\" date-order=\"ymd\"/></sources>"
                    "</labwatch>")
              .message == "<source facility=\"QDX\">: date-order must be mdy or dmy, not 'ymd'");
  }
  SECTION("unknown charset") {
    CHECK(must_fail("<labwatch><sources><source facility=\"QDX\" charset=\"ebcdic\"/></sources>"
                    "</labwatch>")
              .message.starts_with("<source facility=\"QDX\">: unknown charset 'ebcdic'"));
  }
  SECTION("duplicate facility") {
    CHECK(must_fail("<labwatch><sources><source facility=\"A\" timezone=\"UTC\"/>"
                    "<source facility=\"A\" timezone=\"UTC\"/></sources></labwatch>")
              .message.find("configured twice") != std::string::npos);
  }
  SECTION("unknown element and attribute") {
    CHECK(must_fail("<labwatch><inbox/></labwatch>").message.find("unknown element") !=
          std::string::npos);
    CHECK(must_fail("<labwatch><paths inbx=\"x\"/></labwatch>").message ==
          "<paths>: unknown attribute 'inbx'");
  }
  SECTION("bad rule") {
    CHECK(
        must_fail(
            "<labwatch><targets><target analyte=\"ferritin\" rule=\"gee:5\"/></targets></labwatch>")
            .message.rfind("<target analyte=\"ferritin\">: rule: ", 0) == 0);
  }
  SECTION("bad trend rule") {
    CHECK(must_fail("<labwatch><targets><trend analyte=\"ferritin\" "
                    "rule=\"trend:falling:2\"/></targets></labwatch>")
              .message.rfind("<trend analyte=\"ferritin\">: rule 'trend:falling:2': ", 0) == 0);
    // The new grammar: the error names the rule as written and what is wrong with it.
    CHECK(must_fail("<labwatch><targets><trend analyte=\"ferritin\" "
                    "rule=\"trend:falling:30:0\"/></targets></labwatch>")
              .message ==
          "<trend analyte=\"ferritin\">: rule 'trend:falling:30:0': clause 1 "
          "'trend:falling:30:0': trend:falling:PCT:DAYS needs a whole number of days from 1 to "
          "3660, not '30:0'");
    CHECK(must_fail("<labwatch><targets><trend analyte=\"ferritin\" "
                    "rule=\"trend:consecutive:3;trend:consecutive:3\"/></targets></labwatch>")
              .message ==
          "<trend analyte=\"ferritin\">: trend rule 'trend:consecutive:3' is "
          "given twice for 'ferritin'");
  }
  SECTION("target for an unknown analyte") {
    CHECK(must_fail("<labwatch><targets><target analyte=\"unobtainium\" "
                    "rule=\"ge:5\"/></targets></labwatch>")
              .message.find("unknown analyte 'unobtainium'") != std::string::npos);
  }
  SECTION("numbers out of range") {
    CHECK(must_fail("<labwatch><intake settle-ms=\"-5\"/></labwatch>").message.find("settle-ms") !=
          std::string::npos);
    CHECK(must_fail("<labwatch><intake max-file-bytes=\"12kb\"/></labwatch>")
              .message.find("whole number") != std::string::npos);
  }
  SECTION("mail URL and addresses") {
    CHECK(must_fail("<labwatch><mail smtp=\"http://x\"/></labwatch>").message.find("smtp://") !=
          std::string::npos);
    CHECK(must_fail("<labwatch><mail smtp=\"smtp://\"/></labwatch>").message.find("no host") !=
          std::string::npos);
    CHECK(must_fail("<labwatch><mail smtp=\"smtp://h\" default-recipient=\"a@b.c&#13;&#10;Bcc: "
                    "x@y\"/></labwatch>")
              .message.find("not a plain e-mail address") != std::string::npos);
  }
  SECTION("practitioners without mail") {
    CHECK(must_fail("<labwatch><practitioners><practitioner id=\"a\" "
                    "email=\"a@b.c\"/></practitioners></labwatch>")
              .message.find("<mail smtp") != std::string::npos);
  }
  SECTION("changing a canonical unit") {
    CHECK(
        must_fail(
            "<labwatch><catalogue><analyte key=\"ferritin\" canonical-unit=\"pmol/L\"/></catalogue>"
            "</labwatch>")
            .message.find("cannot change the canonical unit") != std::string::npos);
  }
}

TEST_CASE("match_source matches file globs first, then an HL7 sending facility", "[config]") {
  const Config c = must_parse(R"(<labwatch><sources>
  <source facility="QDX" timezone="America/New_York" files="a_qdx*;e_qdx*"/>
  <source facility="LCA" timezone="America/Chicago" files="b_lca*"/>
</sources></labwatch>)");
  CHECK(labwatch::config::match_source(c, "e_qdx_truncated.hl7")->facility == "QDX");
  CHECK(labwatch::config::match_source(c, "b_lca_01.hl7", "QDX")->facility == "LCA");
  CHECK(labwatch::config::match_source(c, "results.hl7", "LCA")->facility == "LCA");
  CHECK(labwatch::config::match_source(c, "results.hl7", "XYZ") == nullptr);
  CHECK(labwatch::config::match_source(c, "results.csv") == nullptr);
}

TEST_CASE("load_config reads only a regular file of at most 1 MiB, and never waits on a FIFO",
          "[config]") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("labwatch-config-kind-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto error_of = [](const std::string& path) {
    auto r = labwatch::config::load_config(path);
    REQUIRE_FALSE(r.has_value());
    return r.error().to_string();
  };
  SECTION("a FIFO nobody writes is refused at once") {
    const std::string fifo = (dir / "fifo.xml").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(error_of(fifo) == fifo +
                                ": not a regular file (a config must be a plain file, not a "
                                "FIFO, device or directory)");
  }
  SECTION("an endless device is refused without reading it") {
    CHECK(error_of("/dev/zero").find("/dev/zero: not a regular file") == 0);
  }
  SECTION("a directory is refused") {
    CHECK(error_of(dir.string()).find(": not a regular file") != std::string::npos);
  }
  SECTION("a file one byte over the limit is refused; one at the limit is read") {
    const std::string big = (dir / "big.xml").string();
    std::string xml = "<labwatch/>";
    xml.resize(labwatch::config::kMaxConfigBytes, ' ');
    std::ofstream(big, std::ios::binary) << xml;
    CHECK(labwatch::config::load_config(big).has_value());
    std::ofstream(big, std::ios::binary | std::ios::app) << ' ';
    CHECK(error_of(big) == big + ": too large: 1048577 bytes, the limit is 1048576");
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("load_config reports an unreadable file by name", "[config]") {
  auto r = labwatch::config::load_config("/nonexistent/labwatch.xml");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().to_string().rfind("/nonexistent/labwatch.xml: cannot read", 0) == 0);
}

TEST_CASE("parse_config reads a source's decimal mark strictly", "[config]") {
  const Config c = must_parse(
      R"(<labwatch><sources><source facility="LMB" timezone="Europe/Berlin" decimal="comma"/>)"
      R"(<source facility="QDX" timezone="America/New_York" decimal="point"/>)"
      R"(<source facility="WCE" timezone="America/Denver"/></sources></labwatch>)");
  REQUIRE(c.sources.size() == 3);
  CHECK(c.sources[0].decimal == labwatch::parsers::DecimalMark::comma);
  CHECK(c.sources[1].decimal == labwatch::parsers::DecimalMark::point);
  CHECK(c.sources[2].decimal == labwatch::parsers::DecimalMark::unknown);
  CHECK(must_fail(R"(<labwatch><sources><source facility="A" timezone="UTC" decimal=","/>)"
                  R"(</sources></labwatch>)")
            .message == "<source facility=\"A\">: decimal must be 'point' or 'comma', not ','");
}

TEST_CASE("parse_config reads a site analyte's plausible values and unitless unit", "[config]") {
  const Config c = must_parse(R"(<labwatch><catalogue>
  <analyte key="base_excess" canonical-unit="mmol/L" plausible-low="-40" plausible-high="40">
    <loinc>11555-0</loinc></analyte>
  <analyte key="ph" canonical-unit="1" plausible-low="6" plausible-high="8"><loinc>2744-1</loinc></analyte>
</catalogue></labwatch>)");
  const auto* base_excess = c.catalogue.by_key("base_excess");
  REQUIRE(base_excess != nullptr);
  CHECK(base_excess->plausible_low == -40.0);
  CHECK(base_excess->plausible_high == 40.0);
  const auto* ph = c.catalogue.by_key("ph");
  REQUIRE(ph != nullptr);
  CHECK(ph->unitless());
  CHECK(must_fail(R"(<labwatch><catalogue><analyte key="x" canonical-unit="1" plausible-low="8" )"
                  R"(plausible-high="6"/></catalogue></labwatch>)")
            .message.find("plausible-high must be above plausible-low") != std::string::npos);
}

TEST_CASE("parse_config reads <alerts>, whose defaults keep old results and preliminaries quiet",
          "[config][alerts]") {
  const Config defaults = must_parse("<labwatch/>");
  CHECK(defaults.alerts.mail_max_age_days == 30);
  CHECK_FALSE(defaults.alerts.mail_preliminary);

  const Config c = must_parse(
      "<labwatch><alerts mail-max-age-days=\"7\" mail-preliminary=\"true\"/></labwatch>");
  CHECK(c.alerts.mail_max_age_days == 7);
  CHECK(c.alerts.mail_preliminary);
  CHECK(must_parse("<labwatch><alerts mail-max-age-days=\"0\"/></labwatch>")
            .alerts.mail_max_age_days == 0);

  for (const char* bad :
       {"mail-max-age-days=\"-1\"", "mail-max-age-days=\"36501\"", "mail-max-age-days=\"30d\"",
        "mail-preliminary=\"maybe\"", "mail-max-age=\"3\""}) {
    CAPTURE(bad);
    const ConfigError e = must_fail("<labwatch><alerts " + std::string(bad) + "/></labwatch>");
    CHECK(e.message.find("<alerts>") != std::string::npos);
  }
}

TEST_CASE("default_config ships trend rules for ferritin, vitamin D and RBC magnesium",
          "[config]") {
  const Config c = labwatch::config::default_config();
  const auto texts = [&](std::string_view key) {
    std::vector<std::string> out;
    const auto found = c.trends.find(key);
    if (found != c.trends.end()) {
      for (const auto& t : found->second) {
        out.push_back(t.text);
      }
    }
    return out;
  };
  CHECK(texts("ferritin") == std::vector<std::string>{"trend:falling:30:365"});
  CHECK(texts("vitamin_d_25oh") == std::vector<std::string>{"trend:falling:30:365"});
  CHECK(texts("rbc_magnesium") == std::vector<std::string>{"trend:consecutive:4"});
  CHECK(texts("homocysteine").empty());
  CHECK(c.trends.size() == 3);

  SECTION("rule=\"none\" leaves an analyte without trend rules") {
    const Config none = must_parse(
        "<labwatch><targets><trend analyte=\"ferritin\" rule=\"none\"/></targets></labwatch>");
    CHECK(none.trends.at("ferritin").empty());
    CHECK(none.trends.at("rbc_magnesium").size() == 1);
  }
  SECTION("two <trend> elements of one analyte add up") {
    const Config two = must_parse(
        "<labwatch><targets><trend analyte=\"ferritin\" rule=\"trend:consecutive:2\"/>"
        "<trend analyte=\"ferritin\" rule=\"trend:toward:10\"/></targets></labwatch>");
    REQUIRE(two.trends.at("ferritin").size() == 2);
    CHECK(two.trends.at("ferritin")[1].text == "trend:toward:10");
  }
}
