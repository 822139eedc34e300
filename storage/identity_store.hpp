// SPDX-License-Identifier: Apache-2.0
// Reviewing patient identity: open match candidates, merge, unmerge, dismissal, the audit trail.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/normalized.hpp"
#include "clinical/person_match.hpp"
#include "storage/store.hpp"

namespace labwatch::storage {

// A pair of persons put before a reviewer by clinical::plan_person_match.
struct MatchRow {
  std::int64_t person_a = 0;  // the smaller id
  std::int64_t person_b = 0;
  clinical::MatchReason reason = clinical::MatchReason::ambiguous;
  std::string fields;  // the differing clinical::PersonFields, comma separated
  clinical::UnixSeconds created_at = 0;
};

// One reviewer action, as the audit table keeps it.
struct AuditRow {
  std::int64_t audit_id = 0;
  clinical::UnixSeconds at = 0;
  std::string os_user;
  std::string action;  // merge, unmerge, dismiss
  std::string detail;  // the persons and identifier concerned
  std::string reason;  // as the reviewer gave it
};

// Who acts, when and why: recorded with each action.
struct ReviewAction {
  std::string os_user;
  std::string reason;
  clinical::UnixSeconds now = 0;
};

// What a merge or unmerge changed in the alerts of the persons involved.
struct IdentityOutcome {
  std::int64_t person_id = 0;  // merge: the person kept; unmerge: the new person
  int moved_results = 0;       // results that changed person
  IngestSummary alerts;        // alerts raised and notices queued by the re-evaluation
};

// A refused action (unknown person, an identifier of another person, ...): a usage error, not an
// environment failure. Names ids and identifiers only.
class IdentityError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The reviewer's operations on one connection. Each is one IMMEDIATE transaction (it waits for a
// running daemon's file transaction through the busy timeout, and no write can come in between
// reading and changing the persons), recorded in identity_audit, and rolled back on any error.
// SQLite errors (SQLITE_BUSY past the timeout included) throw SQLite::Exception.
class IdentityStore {
 public:
  virtual ~IdentityStore() = default;
  IdentityStore() = default;
  IdentityStore(const IdentityStore&) = delete;
  IdentityStore& operator=(const IdentityStore&) = delete;
  IdentityStore(IdentityStore&&) = delete;
  IdentityStore& operator=(IdentityStore&&) = delete;

  // The pairs still open, oldest first.
  virtual std::vector<MatchRow> open_matches() = 0;
  // Every recorded action, oldest first.
  virtual std::vector<AuditRow> audit() = 0;

  // Merges person `absorbed` into `kept`: its identifiers, messages, results, not-performed lines
  // and mail follow, its other pairs move to `kept`, and it stays only as a
  // tombstone (persons.merged_into). The trend rules of `kept`
  // are judged again under `targets`. Throws IdentityError for an unknown or equal id.
  virtual IdentityOutcome merge(std::int64_t kept, std::int64_t absorbed,
                                const ReviewAction& action, const AlertPolicy& targets) = 0;

  // Gives identifier authority|mrn of `person` a new person of its own, with the demographics it
  // was first reported with, and the messages reported under it with their results and mail. Both
  // persons' trend rules are judged again; the pair is recorded as dismissed so it is not
  // proposed again. Throws IdentityError when the identifier is not the person's or its only one.
  virtual IdentityOutcome unmerge(std::int64_t person, std::string_view authority,
                                  std::string_view mrn, const ReviewAction& action,
                                  const AlertPolicy& targets) = 0;

  // Closes the open pair (a, b), in either order, as two persons. Throws IdentityError when no
  // such open pair exists.
  virtual void dismiss(std::int64_t a, std::int64_t b, const ReviewAction& action) = 0;
};

// Opens the SQLite database at `path` (migrating it as open_store does) for review.
std::unique_ptr<IdentityStore> open_identity_store(const std::string& path,
                                                   const StoreOptions& options = {});

}  // namespace labwatch::storage
