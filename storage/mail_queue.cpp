// SPDX-License-Identifier: Apache-2.0
// The dispatcher's side of the SQLite outbox: claim, sent, retry, failed, reset, diagnostics.
#include "storage/mail_queue.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "storage/sql.hpp"
#include "storage/sql_values.hpp"

namespace labwatch::storage {

namespace {

constexpr int kHistoryPoints = 5;
// A relay's error text is kept for diagnostics, not as a log: the first kilobyte is enough.
constexpr std::size_t kMaxErrorLength = 1024;

std::string bounded_error(std::string_view error) {
  if (error.size() <= kMaxErrorLength) {
    return std::string(error);
  }
  std::size_t end = kMaxErrorLength;
  while (end > 0 && (static_cast<unsigned char>(error[end]) & 0xC0u) == 0x80u) {
    --end;  // do not cut a UTF-8 sequence
  }
  return std::string(error.substr(0, end));
}

clinical::NoticeKind read_notice_kind(const sql::Column& column) {
  const std::string_view text = column.as_text();
  if (const auto kind = clinical::parse_notice_kind(text)) {
    return *kind;
  }
  throw std::runtime_error("notices.kind holds an unknown value '" + std::string(text) + "'");
}

// alerts.evidence ("collected_at=value;..."): the points a trend alert rests on. A point that
// does not read is left out (the mail then names fewer values, never wrong ones).
std::vector<clinical::TrendPoint> read_evidence(std::string_view text) {
  std::vector<clinical::TrendPoint> points;
  while (!text.empty()) {
    const std::size_t semicolon = text.find(';');
    const std::string_view item = text.substr(0, semicolon);
    text = semicolon == std::string_view::npos ? std::string_view{} : text.substr(semicolon + 1);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    clinical::UnixSeconds at = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + eq, at);
    if (ec != std::errc() || end != item.data() + eq) {
      continue;
    }
    const std::string value(item.substr(eq + 1));
    char* value_end = nullptr;
    const double v = std::strtod(value.c_str(), &value_end);
    if (value.empty() || value_end != value.c_str() + value.size()) {
      continue;
    }
    clinical::TrendPoint& point = points.emplace_back();
    point.collected_at = at;
    point.value = v;
  }
  return points;
}

}  // namespace

std::vector<OutboxItem> MailQueue::claim_due(clinical::UnixSeconds now, int max) {
  std::vector<OutboxItem> items;
  if (max <= 0) {
    return items;
  }
  // No writer lock: on PostgreSQL a claim takes only the rows it claims, skipping those another
  // transaction holds (another site's claim, or an ingest adding a notice to the item).
  sql::Transaction transaction(db_, sql::Lock::rows);
  const bool postgresql = db_.dialect() == sql::Dialect::postgresql;
  {
    // An item whose claimer died while sending it (its lease ended) is due again.
    sql::Statement reclaim(db_,
                           "UPDATE outbox SET state = 'pending' WHERE state = 'sending' AND "
                           "lease_until <= ?");
    reclaim.bind(1, now);
    reclaim.exec();
  }
  {
    sql::Statement due(
        db_,
        std::string("SELECT o.outbox_id, o.message_id, o.practitioner_id, o.email, o.name, "
                    "o.full_phi, o.person_id, o.patient_key, o.report_ref, o.attempts, p.family, "
                    "p.given, p.birth_date "
                    "FROM outbox o JOIN persons p ON p.person_id = o.person_id "
                    "WHERE o.state = 'pending' AND o.due_at <= ?1 AND o.next_attempt_at <= ?1 "
                    "ORDER BY CASE WHEN o.due_at > o.next_attempt_at THEN o.due_at "
                    "ELSE o.next_attempt_at END, o.outbox_id LIMIT ?2") +
            (postgresql ? " FOR UPDATE OF o SKIP LOCKED" : ""));
    due.bind(1, now);
    due.bind(2, max);
    while (due.step()) {
      OutboxItem& item = items.emplace_back();
      item.id = due.column(0).as_int64();
      item.message_id = due.column(1).as_string();
      item.recipient.practitioner_id = due.column(2).as_string();
      item.recipient.email = due.column(3).as_string();
      item.recipient.name = due.column(4).as_string();
      item.recipient.full_phi = due.column(5).as_int() != 0;
      item.person_id = due.column(6).as_int64();
      item.patient_key = due.column(7).as_string();
      item.report_ref = due.column(8).as_string();
      item.attempts = due.column(9).as_int() + 1;
      item.family = due.column(10).as_string();
      item.given = due.column(11).as_string();
      item.birth_date = due.column(12).as_string();
    }
  }

  sql::Statement notices(
      db_,
      "SELECT n.alert_id, n.kind, n.previous_value, n.previous_message_id, a.rule, a.target_low, "
      "a.target_high, r.ref_low, r.ref_high, r.analyte, r.value, r.comparator, r.unit, "
      "r.collected_at, r.raw_range, r.person_id, r.raw_unit, r.range_use, r.flags, "
      "r.shown_decimals, a.evidence "
      "FROM notices n JOIN alerts a ON a.alert_id = n.alert_id "
      "JOIN results r ON r.result_id = n.result_id WHERE n.outbox_id = ? ORDER BY n.notice_id");
  sql::Statement history(db_,
                         "SELECT collected_at, value, comparator, shown_decimals FROM results "
                         "WHERE person_id = ? AND analyte = ? AND state = 'current' "
                         "ORDER BY collected_at DESC, result_id DESC LIMIT ?");
  sql::Statement claim(db_,
                       "UPDATE outbox SET state = 'sending', attempts = attempts + 1, "
                       "claimed_by = ?2, lease_until = ?3 WHERE outbox_id = ?1");
  sql::Statement discard(db_, "DELETE FROM outbox WHERE outbox_id = ?");
  for (OutboxItem& item : items) {
    std::map<std::pair<std::int64_t, std::string>, std::vector<HistoryPoint>> histories;
    notices.reset();
    notices.bind(1, item.id);
    while (notices.step()) {
      Notice& notice = item.notices.emplace_back();
      notice.alert_id = notices.column(0).as_int64();
      notice.kind = read_notice_kind(notices.column(1));
      notice.previous_value = read_optional(notices.column(2));
      notice.previous_message_id = notices.column(3).as_string();
      notice.rule = notices.column(4).as_string();
      notice.target_low = read_optional(notices.column(5));
      notice.target_high = read_optional(notices.column(6));
      notice.ref_low = read_optional(notices.column(7));
      notice.ref_high = read_optional(notices.column(8));
      notice.analyte = notices.column(9).as_string();
      notice.value = notices.column(10).as_double();
      notice.comparator = notices.column(11).as_string();
      notice.unit = notices.column(12).as_string();
      notice.collected_at = notices.column(13).as_int64();
      notice.raw_range = notices.column(14).as_string();
      const std::int64_t person_id = notices.column(15).as_int64();
      notice.raw_unit = notices.column(16).as_string();
      // Rows stored before version 6 say nothing: a bound they have was the lab's range.
      notice.range_problem =
          clinical::range_problem_from_key(notices.column(17).as_string())
              .value_or(notice.ref_low || notice.ref_high ? clinical::RangeProblem::none
                                                          : clinical::RangeProblem::not_printed);
      notice.flags = notices.column(18).as_string();
      notice.shown_decimals = read_position(notices.column(19));
      notice.evidence = read_evidence(notices.column(20).as_text());

      auto [at, added] = histories.try_emplace({person_id, notice.analyte});
      if (added) {
        history.reset();
        history.bind(1, person_id);
        history.bind(2, notice.analyte);
        history.bind(3, kHistoryPoints);
        while (history.step()) {
          at->second.push_back({history.column(0).as_int64(), history.column(1).as_double(),
                                history.column(2).as_string(), read_position(history.column(3))});
        }
        std::reverse(at->second.begin(), at->second.end());  // oldest first
      }
      notice.history = at->second;
    }
    // Every notice taken back leaves no empty item behind, so none is expected here; an empty
    // one would be a mail about nothing, and is dropped rather than sent.
    sql::Statement& change = item.notices.empty() ? discard : claim;
    change.reset();
    change.bind(1, item.id);
    if (!item.notices.empty()) {
      change.bind(2, site_);
      change.bind(3, now + kLeaseSeconds);
    }
    change.exec();
  }
  transaction.commit();
  std::erase_if(items, [](const OutboxItem& item) { return item.notices.empty(); });
  return items;
}

void MailQueue::mark_sent(std::int64_t outbox_id, clinical::UnixSeconds now) {
  sql::Transaction transaction(db_);
  sql::Statement item(db_,
                      "UPDATE outbox SET state = 'sent', sent_at = ?, last_error = '' "
                      "WHERE outbox_id = ?");
  item.bind(1, now);
  item.bind(2, outbox_id);
  item.exec();
  // Resolved, superseded and withdrawn alerts keep their state: a resolution or retraction
  // notice is about an alert that is no longer active.
  sql::Statement alerts(db_,
                        "UPDATE alerts SET state = 'sent', updated_at = ?1 "
                        "WHERE (state = 'pending' OR state = 'failed') AND alert_id IN "
                        "(SELECT alert_id FROM notices WHERE outbox_id = ?2)");
  alerts.bind(1, now);
  alerts.bind(2, outbox_id);
  alerts.exec();
  transaction.commit();
}

void MailQueue::mark_retry(std::int64_t outbox_id, clinical::UnixSeconds next_attempt,
                           std::string_view error) {
  sql::Statement item(db_,
                      "UPDATE outbox SET state = 'pending', next_attempt_at = ?, last_error = ? "
                      "WHERE outbox_id = ? AND (state = 'sending' OR state = 'pending')");
  item.bind(1, next_attempt);
  item.bind(2, bounded_error(error));
  item.bind(3, outbox_id);
  item.exec();
}

void MailQueue::mark_failed(std::int64_t outbox_id, std::string_view error) {
  sql::Transaction transaction(db_);
  sql::Statement item(db_,
                      "UPDATE outbox SET state = 'failed', last_error = ? "
                      "WHERE outbox_id = ? AND state <> 'sent'");
  item.bind(1, bounded_error(error));
  item.bind(2, outbox_id);
  if (item.exec() > 0) {
    // An alert another mail (to another recipient) still carries is not failed yet.
    sql::Statement alerts(
        db_,
        "UPDATE alerts SET state = 'failed', updated_at = ?1 "
        "WHERE state = 'pending' AND alert_id IN (SELECT alert_id FROM notices WHERE outbox_id = "
        "?2) "
        "AND NOT EXISTS (SELECT 1 FROM notices n JOIN outbox o ON o.outbox_id = n.outbox_id "
        "WHERE n.alert_id = alerts.alert_id AND (o.state = 'pending' OR o.state = 'sending'))");
    alerts.bind(1, unix_now());
    alerts.bind(2, outbox_id);
    alerts.exec();
  }
  transaction.commit();
}

int MailQueue::reset_interrupted() {
  // What this site left 'sending' (its daemon holds the inbox's lock, so no process of the site
  // is still sending it), and what no site claimed by name (claims before schema 13). Other
  // sites' items wait for their lease.
  sql::Statement reset(db_,
                       "UPDATE outbox SET state = 'pending' WHERE state = 'sending' AND "
                       "(claimed_by = ? OR claimed_by = '')");
  reset.bind(1, site_);
  return reset.exec();
}

std::optional<clinical::UnixSeconds> MailQueue::next_due() {
  // The earliest pending item, or the earliest lease to end (its item is then due again).
  sql::Statement query(db_,
                       "SELECT min(due) FROM (SELECT CASE WHEN due_at > next_attempt_at "
                       "THEN due_at ELSE next_attempt_at END AS due FROM outbox "
                       "WHERE state = 'pending' UNION ALL SELECT lease_until FROM outbox "
                       "WHERE state = 'sending') AS due_times");
  query.step();
  const sql::Column due = query.column(0);
  if (due.is_null()) {
    return std::nullopt;
  }
  return due.as_int64();
}

std::vector<OutboxRow> MailQueue::rows(bool all) {
  std::string sql =
      "SELECT o.outbox_id, o.email, o.state, o.attempts, o.last_error, o.message_id, "
      "CASE WHEN o.due_at > o.next_attempt_at THEN o.due_at ELSE o.next_attempt_at END, o.sent_at, "
      "(SELECT count(*) FROM notices n WHERE n.outbox_id = o.outbox_id), o.person_id "
      "FROM outbox o ";
  if (!all) {
    sql += "WHERE o.state <> '";
    sql += to_string(OutboxState::sent);
    sql += "' ";
  }
  sql += "ORDER BY o.outbox_id";
  sql::Statement query(db_, sql);
  std::vector<OutboxRow> rows;
  while (query.step()) {
    OutboxRow& row = rows.emplace_back();
    row.id = query.column(0).as_int64();
    row.email = query.column(1).as_string();
    row.state = read_outbox_state(query.column(2));
    row.attempts = query.column(3).as_int();
    row.last_error = query.column(4).as_string();
    row.message_id = query.column(5).as_string();
    row.due_at = query.column(6).as_int64();
    if (const sql::Column sent = query.column(7); !sent.is_null()) {
      row.sent_at = sent.as_int64();
    }
    row.alerts = query.column(8).as_int();
    row.person_id = query.column(9).as_int64();
  }
  return rows;
}

int MailQueue::retry_failed(std::optional<std::int64_t> outbox_id, clinical::UnixSeconds now) {
  sql::Transaction transaction(db_);
  // The alerts first, while their items still say 'failed'.
  sql::Statement alerts(
      db_,
      "UPDATE alerts SET state = 'pending', updated_at = ?1 WHERE state = 'failed' AND alert_id "
      "IN (SELECT n.alert_id FROM notices n JOIN outbox o ON o.outbox_id = n.outbox_id "
      "WHERE o.state = 'failed' AND (CAST(?2 AS BIGINT) IS NULL OR o.outbox_id = ?2))");
  sql::Statement items(db_,
                       "UPDATE outbox SET state = 'pending', next_attempt_at = ?1 "
                       "WHERE state = 'failed' AND (CAST(?2 AS BIGINT) IS NULL OR outbox_id = ?2)");
  for (sql::Statement* statement : {&alerts, &items}) {
    statement->bind(1, now);
    if (outbox_id) {
      statement->bind(2, *outbox_id);
    } else {
      statement->bind_null(2);
    }
  }
  alerts.exec();
  const int changed = items.exec();
  transaction.commit();
  return changed;
}

}  // namespace labwatch::storage
