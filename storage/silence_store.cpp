// SPDX-License-Identifier: Apache-2.0
// Silences: recording one with the state of the alert it is set against, listing,
// expiring.
#include "storage/silence_store.hpp"

#include <optional>
#include <string>
#include <vector>

#include "clinical/rule_ref.hpp"
#include "clinical/silence.hpp"
#include "storage/sql.hpp"
#include "storage/sql_values.hpp"

namespace labwatch::storage {

std::int64_t add_silence(sql::Database& db, const NewSilence& silence) {
  sql::Transaction transaction(db);
  // The alert a practitioner is looking at: the one on the latest current result of the analyte
  // (the optimal target's or a lab witness's; a trend alert beside it says less).
  sql::Statement latest(
      db,
      "SELECT a.rule, a.value, a.target_low, a.target_high, r.flags, r.collected_at FROM alerts a "
      "JOIN results r ON r.result_id = a.result_id "
      "WHERE r.person_id = ? AND r.analyte = ? AND r.state = 'current' AND " +
          active_alert_condition("a.state") + " ORDER BY r.collected_at DESC, a.alert_id DESC");
  latest.bind(1, silence.person_id);
  latest.bind(2, silence.analyte);
  std::vector<clinical::SilencedAlert> alerts;
  while (latest.step()) {
    const clinical::UnixSeconds collected_at = latest.column(5).as_int64();
    if (!alerts.empty() && collected_at != alerts.front().collected_at) {
      break;  // only the latest draw's alerts are candidates
    }
    clinical::SilencedAlert& alert = alerts.emplace_back();
    alert.rule = clinical::rule_ref(latest.column(0).as_string());
    alert.value = latest.column(1).as_double();
    alert.target_low = read_optional(latest.column(2));
    alert.target_high = read_optional(latest.column(3));
    alert.flags = latest.column(4).as_string();
    alert.collected_at = collected_at;
  }
  const std::optional<clinical::AlertState> set_for = clinical::silenced_alert_state(alerts);
  std::string side;
  std::string tier;
  if (set_for) {
    side = clinical::to_string(set_for->side);
    tier = clinical::to_string(set_for->tier);
  }
  sql::Statement insert(
      db, std::string("INSERT INTO silences (person_id, analyte, until_at, reason, os_user, "
                      "created_at, set_side, set_tier) VALUES (?, ?, ?, ?, ?, ?, ?, ?)") +
              db.returning("silence_id"));
  insert.bind(1, silence.person_id);
  insert.bind(2, silence.analyte);
  insert.bind(3, silence.until);
  insert.bind(4, silence.reason);
  insert.bind(5, silence.os_user);
  insert.bind(6, silence.now);
  insert.bind(7, side);
  insert.bind(8, tier);
  const std::int64_t id = inserted_id(db, insert);
  transaction.commit();
  return id;
}

std::vector<SilenceRow> list_silences(sql::Database& db) {
  sql::Statement query(db,
                       "SELECT silence_id, person_id, analyte, until_at, os_user, created_at, "
                       "reason, expired_at, set_side, set_tier FROM silences "
                       "ORDER BY silence_id");
  std::vector<SilenceRow> rows;
  while (query.step()) {
    SilenceRow& row = rows.emplace_back();
    row.silence_id = query.column(0).as_int64();
    row.person_id = query.column(1).as_int64();
    row.analyte = query.column(2).as_string();
    row.until = query.column(3).as_int64();
    row.os_user = query.column(4).as_string();
    row.created_at = query.column(5).as_int64();
    row.reason = query.column(6).as_string();
    if (!query.column(7).is_null()) {
      row.expired_at = query.column(7).as_int64();
    }
    row.set_side = query.column(8).as_string();
    row.set_tier = query.column(9).as_string();
  }
  return rows;
}

bool expire_silence(sql::Database& db, std::int64_t silence_id, clinical::UnixSeconds now) {
  sql::Statement update(db,
                        "UPDATE silences SET expired_at = ?1 WHERE silence_id = ?2 AND "
                        "expired_at IS NULL AND until_at > ?1");
  update.bind(1, now);
  update.bind(2, silence_id);
  return update.exec() == 1;
}

}  // namespace labwatch::storage
