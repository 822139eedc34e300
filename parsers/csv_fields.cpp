// SPDX-License-Identifier: Apache-2.0
// CSV header vocabulary (built-in English and German aliases) and single-cell readers.
#include "parsers/csv_fields.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parsers/csv_parser.hpp"
#include "parsers/text.hpp"

namespace labwatch::parsers {
namespace {

struct Alias {
  std::string_view key;  // folded as csv_header_key folds
  CsvColumn column;
};

using C = CsvColumn;

// Header names seen in lab, EHR and portal exports, English and German, already folded. German
// keys keep their umlauts: folding only lowers ASCII letters, and "Ä" stays "Ä".
constexpr auto kAliases = std::to_array<Alias>({
    {"patientid", C::patient_id},
    {"mrn", C::patient_id},
    {"medicalrecordnumber", C::patient_id},
    {"patientnumber", C::patient_id},
    {"patientno", C::patient_id},
    {"patientnr", C::patient_id},
    {"patid", C::patient_id},
    {"patnr", C::patient_id},
    {"patientidentifier", C::patient_id},
    {"patientenid", C::patient_id},
    {"patientennummer", C::patient_id},
    {"patientennr", C::patient_id},
    {"chartnumber", C::patient_id},

    // "Patient" alone is read as a name: taking a name for an id would be worse than refusing.
    {"patientname", C::patient_name},
    {"name", C::patient_name},
    {"fullname", C::patient_name},
    {"patient", C::patient_name},
    {"patientenname", C::patient_name},

    {"lastname", C::last_name},
    {"surname", C::last_name},
    {"familyname", C::last_name},
    {"nachname", C::last_name},
    {"familienname", C::last_name},
    {"patientlastname", C::last_name},

    {"firstname", C::first_name},
    {"givenname", C::first_name},
    {"forename", C::first_name},
    {"given", C::first_name},
    {"vorname", C::first_name},
    {"patientfirstname", C::first_name},

    {"birthdate", C::birth_date},
    {"dob", C::birth_date},
    {"dateofbirth", C::birth_date},
    {"birthday", C::birth_date},
    {"patientdob", C::birth_date},
    {"patientbirthdate", C::birth_date},
    {"geburtsdatum", C::birth_date},
    {"gebdatum", C::birth_date},
    {"geb.datum", C::birth_date},
    {"geburtstag", C::birth_date},

    {"sex", C::sex},
    {"gender", C::sex},
    {"geschlecht", C::sex},
    {"patientsex", C::sex},
    {"patientgender", C::sex},
    {"administrativesex", C::sex},

    {"testname", C::test_name},
    {"test", C::test_name},
    {"analyte", C::test_name},
    {"analytename", C::test_name},
    {"analysis", C::test_name},
    {"testdescription", C::test_name},
    {"observation", C::test_name},
    {"observationname", C::test_name},
    {"component", C::test_name},
    {"resultname", C::test_name},
    {"untersuchung", C::test_name},
    {"parameter", C::test_name},
    {"laborparameter", C::test_name},
    {"analyt", C::test_name},
    {"analyse", C::test_name},

    {"loinc", C::loinc},
    {"loinccode", C::loinc},
    {"loincnum", C::loinc},
    {"loincnumber", C::loinc},
    {"loincid", C::loinc},

    {"code", C::local_code},
    {"testcode", C::local_code},
    {"localcode", C::local_code},
    {"labcode", C::local_code},
    {"ordercode", C::local_code},
    {"resultcode", C::local_code},
    {"analytecode", C::local_code},
    {"testid", C::local_code},
    {"parametercode", C::local_code},
    {"untersuchungscode", C::local_code},
    {"kürzel", C::local_code},

    {"value", C::value},
    {"result", C::value},
    {"resultvalue", C::value},
    {"observationvalue", C::value},
    {"testresult", C::value},
    {"ergebnis", C::value},
    {"wert", C::value},
    {"messwert", C::value},
    {"resultat", C::value},

    {"unit", C::unit},
    {"units", C::unit},
    {"resultunit", C::unit},
    {"resultunits", C::unit},
    {"uom", C::unit},
    {"unitofmeasure", C::unit},
    {"unitsofmeasure", C::unit},
    {"einheit", C::unit},
    {"einheiten", C::unit},
    {"maßeinheit", C::unit},
    {"masseinheit", C::unit},

    {"referencerange", C::reference_range},
    {"refrange", C::reference_range},
    {"referenceinterval", C::reference_range},
    {"refinterval", C::reference_range},
    {"normalrange", C::reference_range},
    {"range", C::reference_range},
    {"reference", C::reference_range},
    {"referenzbereich", C::reference_range},
    {"normalbereich", C::reference_range},
    {"referenz", C::reference_range},
    {"referenzwert", C::reference_range},
    {"referenzwerte", C::reference_range},
    {"normwert", C::reference_range},
    {"normwerte", C::reference_range},

    {"flag", C::flag},
    {"flags", C::flag},
    {"abnormalflag", C::flag},
    {"abnormalflags", C::flag},
    {"abnormal", C::flag},
    {"resultflag", C::flag},
    {"interpretation", C::flag},
    {"kennzeichen", C::flag},

    {"collected", C::collected_at},
    {"collectedat", C::collected_at},
    {"collecteddate", C::collected_at},
    {"collectiontime", C::collected_at},
    {"collectiontimeutc", C::collected_at},
    {"collectiondate", C::collected_at},
    {"collectiondatetime", C::collected_at},
    {"specimencollected", C::collected_at},
    {"specimencollectiontime", C::collected_at},
    {"specimencollectiondate", C::collected_at},
    {"drawn", C::collected_at},
    {"datedrawn", C::collected_at},
    {"drawdate", C::collected_at},
    {"drawtime", C::collected_at},
    {"sampledate", C::collected_at},
    {"sampletime", C::collected_at},
    {"samplingtime", C::collected_at},
    {"entnahmezeitpunkt", C::collected_at},
    {"entnahmedatum", C::collected_at},
    {"entnahmezeit", C::collected_at},
    {"entnahme", C::collected_at},
    {"probenentnahme", C::collected_at},
    {"abnahmedatum", C::collected_at},
    {"abnahmezeitpunkt", C::collected_at},
    {"abnahmezeit", C::collected_at},

    {"comments", C::comments},
    {"comment", C::comments},
    {"notes", C::comments},
    {"note", C::comments},
    {"remarks", C::comments},
    {"remark", C::comments},
    {"resultcomment", C::comments},
    {"resultcomments", C::comments},
    {"kommentar", C::comments},
    {"kommentare", C::comments},
    {"bemerkung", C::comments},
    {"bemerkungen", C::comments},
    {"anmerkung", C::comments},
    {"anmerkungen", C::comments},

    {"accession", C::accession},
    {"accessionnumber", C::accession},
    {"accessionno", C::accession},
    {"accessionnr", C::accession},
    {"accessionid", C::accession},
    {"specimenid", C::accession},
    {"specimennumber", C::accession},
    {"sampleid", C::accession},
    {"labnumber", C::accession},
    {"labno", C::accession},
    {"auftragsnummer", C::accession},
    {"auftragsnr", C::accession},
    {"probennummer", C::accession},
    {"probennr", C::accession},

    {"status", C::status},
    {"resultstatus", C::status},
    {"observationstatus", C::status},
    {"teststatus", C::status},
    {"befundstatus", C::status},
    {"ergebnisstatus", C::status},
});

struct StatusWord {
  std::string_view key;  // folded as csv_header_key folds
  char status;
};

// HL7 OBX-11 letters, the FHIR Observation.status words, and their German counterparts.
constexpr auto kStatusWords = std::to_array<StatusWord>({
    {"f", 'F'},           {"final", 'F'},      {"endbefund", 'F'},
    {"endgültig", 'F'},   {"endgueltig", 'F'}, {"p", 'P'},
    {"preliminary", 'P'}, {"prelim", 'P'},     {"vorläufig", 'P'},
    {"vorlaeufig", 'P'},  {"vorbefund", 'P'},  {"c", 'C'},
    {"corrected", 'C'},   {"correction", 'C'}, {"amended", 'C'},
    {"korrigiert", 'C'},  {"korrektur", 'C'},  {"x", 'X'},
    {"cancelled", 'X'},   {"canceled", 'X'},   {"enteredinerror", 'X'},
    {"storniert", 'X'},   {"annulliert", 'X'},
});

constexpr bool is_folded(std::string_view key) {
  for (const char c : key) {
    if ((c >= 'A' && c <= 'Z') || c == ' ' || c == '_' || c == '-') {
      return false;
    }
  }
  return !key.empty();
}

// Every built-in key is folded and names one column only, so lookups cannot depend on order.
constexpr bool aliases_are_consistent() {
  for (std::size_t i = 0; i < kAliases.size(); ++i) {
    if (!is_folded(kAliases[i].key)) {
      return false;
    }
    for (std::size_t j = i + 1; j < kAliases.size(); ++j) {
      if (kAliases[i].key == kAliases[j].key) {
        return false;
      }
    }
  }
  for (std::size_t i = 0; i < kStatusWords.size(); ++i) {
    if (!is_folded(kStatusWords[i].key)) {
      return false;
    }
    for (std::size_t j = i + 1; j < kStatusWords.size(); ++j) {
      if (kStatusWords[i].key == kStatusWords[j].key) {
        return false;
      }
    }
  }
  return true;
}
static_assert(aliases_are_consistent(), "a built-in CSV alias is unfolded or listed twice");

}  // namespace

std::string_view to_string(CsvColumn c) noexcept {
  switch (c) {
    case CsvColumn::patient_id:
      return "patient_id";
    case CsvColumn::patient_name:
      return "patient_name";
    case CsvColumn::last_name:
      return "last_name";
    case CsvColumn::first_name:
      return "first_name";
    case CsvColumn::birth_date:
      return "birth_date";
    case CsvColumn::sex:
      return "sex";
    case CsvColumn::test_name:
      return "test_name";
    case CsvColumn::loinc:
      return "loinc";
    case CsvColumn::local_code:
      return "local_code";
    case CsvColumn::value:
      return "value";
    case CsvColumn::unit:
      return "unit";
    case CsvColumn::reference_range:
      return "reference_range";
    case CsvColumn::flag:
      return "flag";
    case CsvColumn::collected_at:
      return "collected_at";
    case CsvColumn::comments:
      return "comments";
    case CsvColumn::accession:
      return "accession";
    case CsvColumn::status:
      return "status";
  }
  return "unknown";
}

std::string_view trim_csv_blanks(std::string_view text) noexcept { return trim(text); }

std::string csv_header_key(std::string_view name) {
  std::string key;
  key.reserve(name.size());
  for (const char c : name) {
    if (c == ' ' || c == '_' || c == '-') {
      continue;
    }
    key.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return key;
}

std::optional<CsvColumn> builtin_csv_column(std::string_view key) noexcept {
  for (const Alias& alias : kAliases) {
    if (alias.key == key) {
      return alias.column;
    }
  }
  return std::nullopt;
}

CsvColumnMap resolve_csv_columns(const std::vector<std::string>& header,
                                 const CsvVocabulary& vocabulary) {
  std::vector<std::string> keys;
  keys.reserve(header.size());
  for (const std::string& name : header) {
    keys.push_back(csv_header_key(name));
  }
  CsvColumnMap map;
  std::vector<bool> taken(header.size(), false);
  auto assign = [&](CsvColumn column, std::size_t position) {
    auto& slot = map.index[static_cast<std::size_t>(column)];
    if (!slot && !taken[position]) {
      slot = position;
      taken[position] = true;
    }
  };
  // The config's aliases describe this site's exports, so they win over any built-in reading.
  for (const auto& [column, aliases] : vocabulary.extra) {
    for (const std::string& alias : aliases) {
      const std::string key = csv_header_key(alias);
      if (key.empty()) {
        continue;
      }
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (keys[i] == key) {
          assign(column, i);
        }
      }
    }
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (const auto column = builtin_csv_column(keys[i])) {
      assign(*column, i);
    }
  }
  return map;
}

CsvPersonName split_csv_person_name(std::string_view text) {
  text = trim_csv_blanks(text);
  CsvPersonName name;
  const std::size_t comma = text.find(',');
  if (comma == std::string_view::npos) {
    name.family = text;
    return name;
  }
  name.family = trim_csv_blanks(text.substr(0, comma));
  std::string_view rest = text.substr(comma + 1);
  rest = trim_csv_blanks(rest.substr(0, rest.find(',')));
  std::size_t space = 0;
  while (space < rest.size() && !is_blank(rest[space])) {
    ++space;
  }
  name.given = rest.substr(0, space);
  name.middle = trim_csv_blanks(rest.substr(space));
  return name;
}

std::optional<char> csv_result_status(std::string_view text) {
  const std::string key = csv_header_key(trim_csv_blanks(text));
  if (key.empty()) {
    return 'F';
  }
  for (const StatusWord& word : kStatusWords) {
    if (word.key == key) {
      return word.status;
    }
  }
  return std::nullopt;
}

}  // namespace labwatch::parsers
