// SPDX-License-Identifier: Apache-2.0
// Reconciliation decisions: who a reported person is, how a result relates to its other versions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/normalized.hpp"

namespace labwatch::clinical {

// ---- Identity ----------------------------------------------------------------------------------

// Folds a UTF-8 name for comparison: Latin letters lose their diacritics (ü -> u, é -> e, ß -> ss,
// æ -> ae, ø -> o, ł -> l), ASCII letters are lower-cased, combining marks, apostrophes and periods
// are dropped, dashes become '-', and runs of white space (and '|', the match-key separator) become
// one space, trimmed at both ends.
// Letters of other scripts and bytes that are not valid UTF-8 are kept unchanged.
std::string fold_person_name(std::string_view name);

// The first given name of a folded given-name field: the text before the first space, so that
// middle names and initials are ignored ("hana j" -> "hana"); a hyphenated name stays whole.
std::string_view first_given_name(std::string_view folded_given) noexcept;

// The key that recognises one person across facilities that share no identifier:
// "family|first given|YYYY-MM-DD|sex", names folded, sex F, M or else U. nullopt when the family
// name, the given name or the birth date is missing: such a person is matched by identifier only.
std::optional<std::string> person_match_key(const PersonIdentity& person);

// ---- Result versions ---------------------------------------------------------------------------

// Where a stored result stands in its history. Only `current` results are exported and alerted on.
enum class ResultState : std::uint8_t { current, superseded, withdrawn, cancelled };

// "current", "superseded", "withdrawn", "cancelled".
std::string_view to_string(ResultState state) noexcept;
// The inverse of to_string; nullopt for any other text.
std::optional<ResultState> parse_result_state(std::string_view text) noexcept;
// The inverse of to_string(ResultStatus); nullopt for any other text.
std::optional<ResultStatus> parse_result_status(std::string_view text) noexcept;

// What makes results versions of one another: the facility, the person and the analyte, with
// the filler order number (HL7 OBR-3) when there is one, else (CSV) the collection time. The person
// is part of every key: a lab that reuses an accession number for another patient reports two
// results, never two versions of one. The key without its analyte is the key's group: one order of
// one person, or one CSV report. Non-owning: the views refer to the report the key was made from.
struct VersionKey {
  std::string_view facility;
  std::string_view order_id;
  std::string_view analyte;
  std::int64_t person_id = 0;
  UnixSeconds collected_at = 0;  // part of the key only when order_id is empty

  [[nodiscard]] bool by_order() const noexcept { return !order_id.empty(); }
  // Equality of the parts that belong to the group (the time only without an order id).
  [[nodiscard]] bool same_group(const VersionKey& other) const noexcept;
  // Equality of the group and the analyte.
  [[nodiscard]] bool same_as(const VersionKey& other) const noexcept {
    return same_group(other) && analyte == other.analyte;
  }
  // Whether `other` is the same order of the same facility about another person: an accession
  // number (OBR-3) reused for another patient.
  [[nodiscard]] bool reuses_accession_of(const VersionKey& other) const noexcept;
};

// The key of `result`, reported by `facility` about `person_id`.
VersionKey version_key(std::string_view facility, const NormalizedResult& result,
                       std::int64_t person_id) noexcept;

// One version of a result as it is stored.
struct StoredVersion {
  std::int64_t id = 0;  // storage id; a larger id arrived later
  UnixSeconds message_time = 0;
  // Its message carried no time (IncomingVersion::time_from_arrival when it arrived): it is
  // ordered by its arrival (id), and message_time is only the clock of its ingest.
  bool time_from_arrival = false;
  ResultStatus status = ResultStatus::final;
  ResultState state = ResultState::current;
  std::optional<std::int64_t> superseded_by;
  double value = 0;
  std::string comparator;
};

// The version that is arriving now.
struct IncomingVersion {
  UnixSeconds message_time = 0;
  ResultStatus status = ResultStatus::final;
  double value = 0;
  std::string_view comparator;
  bool by_order = true;  // keyed by order id (HL7); false for the natural key (CSV)
  // The message carried no time and message_time is its arrival: a resend arrives later, so the
  // time does not tell versions apart.
  bool time_from_arrival = false;
};

// A stored version whose state or successor must change.
struct VersionChange {
  std::int64_t id = 0;
  ResultState from = ResultState::current;
  ResultState to = ResultState::current;
  std::optional<std::int64_t> superseded_by;  // an existing version, or...
  bool superseded_by_incoming = false;        // ...the incoming one (its id is not known yet)
};

struct VersionPlan {
  bool duplicate = false;  // the incoming version is already stored: store nothing
  ResultState state = ResultState::current;   // of the incoming version
  std::optional<std::int64_t> superseded_by;  // of the incoming version: an existing version
  std::vector<VersionChange> changes;         // existing versions to update
};

// Decides how an incoming version joins the stored versions of the same key (any order, any
// states). Versions are ordered by message time, then status (preliminary < final < corrected <
// cancelled), then arrival. A version timed by arrival (time_from_arrival) has no place in that
// order of its own: it follows every version that arrived before it, and precedes a later arrival
// unless that one's own time places it before one of those. The last one is current unless it is
// a cancellation; every other version points at its successor and is superseded, or withdrawn
// when that successor is a cancellation; a cancellation is never current. So among versions with
// times the outcome does not depend on arrival order.
// A duplicate is a version with the same status, comparator and value (within 1e-9 relative) and,
// when keyed by order, the same message time (or either timed by arrival). A CSV row carries no
// message time (0): there the same value again is a duplicate and a different value, arriving
// later, supersedes.
VersionPlan plan_version(std::span<const StoredVersion> existing, const IncomingVersion& incoming);

// OBX-11 U (final without retransmission): the version it makes final is the current preliminary
// among `existing` (one result's versions). nullopt when there is none: nothing to promote.
std::optional<std::int64_t> plan_promotion(std::span<const StoredVersion> existing) noexcept;

// ---- The same draw under another accession
// -------------------------------------------------------

// A stored version found by draw (person, collection time, analyte) or by a parent order id.
struct DrawCandidate {
  VersionKey key;  // facility, order id, analyte, person, collection time of the stored version
  StoredVersion version;
};

// What a result arriving under its own key tells about the draw it belongs to.
struct DrawFacts {
  VersionKey key;  // of the incoming result (its collection time set even when keyed by order)
  std::string_view parent_order_id;  // OBR-29: the order it follows up; empty when none
  ResultStatus status = ResultStatus::final;
};

// The stored versions that an incoming result replaces although they are not under its key:
// labs that correct a result under a new accession number either name the original in OBR-29
// (then: that order's versions of the same facility, person and analyte) or say nothing (then a
// correction replaces the same draw: same facility, person, analyte and collection time under
// another order id). Only when the incoming result has no versions of its own (`own_versions`
// 0): with versions under its key, it is a version of those. A final under a new accession without
// a parent is a new result (a repeat test of the same draw), never a replacement.
std::vector<StoredVersion> draw_versions(std::span<const DrawCandidate> candidates,
                                         const DrawFacts& incoming, std::size_t own_versions);

// ---- A fraction standing in for its total ------------------------------------------------------

// A current version of a total (25-OH vitamin D) of one draw: person, collection time.
struct DrawTotal {
  std::int64_t id = 0;
  // The fraction it was read from (NormalizedResult::fraction: "vitamin_d3_25oh") when it stands
  // in for the total; empty for a real total.
  std::string_view fraction;
  [[nodiscard]] bool stand_in() const noexcept { return !fraction.empty(); }
};

// A stand-in that leaves the total's place to a real total: it is superseded there and kept as
// its own fraction (a copy stored under `fraction`), so that its value stays current.
struct StandInMove {
  std::int64_t id = 0;
  std::string_view fraction;  // the analyte it is kept as ("vitamin_d3_25oh")
  bool operator==(const StandInMove&) const = default;
};

struct StandInPlan {
  bool store_as_fraction = false;     // the incoming stand-in is stored as its fraction
  std::vector<StandInMove> replaced;  // stand-ins the incoming real total takes the place of
};

// Why: a fraction (25-OH D3) stands in for its total only while the draw has no real total. So a
// stand-in that arrives where a real total is current is only the fraction, and never replaces
// it; a real total that arrives where stand-ins are current takes their place, whatever the order
// of their messages, and each stand-in is kept as the fraction it is: so both arrival orders end
// with the same current results (the total, and the fraction as its own analyte). Stand-ins among
// themselves, and totals among themselves, version as usual.
StandInPlan plan_stand_in(bool incoming_stand_in, std::span<const DrawTotal> current);

// The analytes a fraction stands in for when the total is absent: 25-OH vitamin D3 (1989-3) for
// the total 25-OH vitamin D, which some labs report as their only 25-OH vitamin D result.
struct StandInPair {
  std::string_view fraction;
  std::string_view total;
};
std::span<const StandInPair> stand_in_pairs() noexcept;
// The fraction a total may be read from, or empty when the analyte has none.
std::string_view stand_in_fraction(std::string_view total) noexcept;

}  // namespace labwatch::clinical
