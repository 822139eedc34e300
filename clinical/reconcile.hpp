// SPDX-License-Identifier: Apache-2.0
// Reconciliation decisions: who a reported person is, how a result relates to its other versions.
#pragma once

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

// What makes results versions of one another. With a filler order number (HL7 OBR-3): facility +
// order id + analyte. Without one (CSV): facility + person + analyte + collection time.
// The key without its analyte is the key's group: one order, or one CSV report.
// Non-owning: the views refer to the report the key was made from.
struct VersionKey {
  std::string_view facility;
  std::string_view order_id;
  std::string_view analyte;
  std::int64_t person_id = 0;    // part of the key only when order_id is empty
  UnixSeconds collected_at = 0;  // part of the key only when order_id is empty

  [[nodiscard]] bool by_order() const noexcept { return !order_id.empty(); }
  // Equality of the parts that belong to the group (person and time only without an order id).
  [[nodiscard]] bool same_group(const VersionKey& other) const noexcept;
  // Equality of the group and the analyte.
  [[nodiscard]] bool same_as(const VersionKey& other) const noexcept {
    return same_group(other) && analyte == other.analyte;
  }
};

// The key of `result`, reported by `facility` about `person_id`.
VersionKey version_key(std::string_view facility, const NormalizedResult& result,
                       std::int64_t person_id) noexcept;

// One version of a result as it is stored.
struct StoredVersion {
  std::int64_t id = 0;  // storage id; a larger id arrived later
  UnixSeconds message_time = 0;
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
// cancelled), then arrival. The last one is current unless it is a cancellation; every other
// version points at its successor and is superseded, or withdrawn when that successor is a
// cancellation; a cancellation is never current. So the outcome does not depend on arrival order.
// A duplicate is a version with the same status, comparator and value (within 1e-9 relative) and,
// when keyed by order, the same message time. A CSV row carries no message time (0): there the
// same value again is a duplicate and a different value, arriving later, supersedes.
VersionPlan plan_version(std::span<const StoredVersion> existing, const IncomingVersion& incoming);

}  // namespace labwatch::clinical
