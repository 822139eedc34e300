// SPDX-License-Identifier: Apache-2.0
// The alert ledger: raising, keeping and settling alerts as versions change; queueing notices.
#include "storage/alert_ledger.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <span>
#include <utility>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/mail_policy.hpp"
#include "clinical/silence.hpp"
#include "storage/sql_values.hpp"

namespace labwatch::storage {

using clinical::AlertStatus;
using clinical::NoticeKind;

namespace {

// The points of trend history a ledger keeps at most (40 bytes each: about 5 MiB); a file that
// brings more forgets them all and reads again.
constexpr std::size_t kMaxHistoryPoints = std::size_t{1} << 17;

constexpr double kNoBound = std::numeric_limits<double>::quiet_NaN();

double kept_bound(const std::optional<double>& bound) noexcept { return bound.value_or(kNoBound); }

std::optional<double> bound_of(double kept) noexcept {
  return std::isnan(kept) ? std::nullopt : std::optional(kept);
}
// The trend alerts a ledger remembers inserting at most, before it reads instead.
constexpr std::size_t kMaxTrendAlertsKept = std::size_t{1} << 16;
// The bits of AlertLedger::trend_alert_bits_ (128 KiB).
constexpr std::size_t kTrendAlertBits = std::size_t{1} << 20;

// A trend alert's evidence as stored: "collected_at=value;..." (values exactly, %.17g).
// Binds the six columns an alert keeps of its judgement, from parameter `first` on: state, value,
// target_low, target_high, ref_low, ref_high (a new alert and a reopened one write the same).
void bind_judgement(sql::Statement& statement, int first, AlertStatus state,
                    const clinical::Decision& decision) {
  statement.bind(first, std::string(clinical::to_string(state)));
  statement.bind(first + 1, decision.value);
  bind_optional(statement, first + 2, decision.target_low);
  bind_optional(statement, first + 3, decision.target_high);
  bind_optional(statement, first + 4, decision.ref_low);
  bind_optional(statement, first + 5, decision.ref_high);
}

std::string evidence_text(const std::vector<clinical::TrendPoint>& evidence) {
  std::string out;
  for (const clinical::TrendPoint& point : evidence) {
    std::array<char, 32> value{};
    std::snprintf(value.data(), value.size(), "%.17g", point.value);
    if (!out.empty()) {
      out += ';';
    }
    out += std::to_string(point.collected_at);
    out += '=';
    out += value.data();
  }
  return out;
}

}  // namespace

// On PostgreSQL, where another site's daemon may be claiming mail meanwhile: the outbox rows the
// ledger reads to add a notice to, or to take one from, are locked until its commit. A claim
// skips them (SKIP LOCKED), or the ledger waits for the claim and then sees the item 'sending'
// and mails a correction or retraction instead. (SQLite has one writer: nothing to lock.)
namespace {

std::string lock_outbox_rows(const sql::Database& db) {
  return db.dialect() == sql::Dialect::postgresql ? " FOR UPDATE OF o" : "";
}

}  // namespace

LedgerStatements::LedgerStatements(sql::Database& db)
    : insert_alert(
          db,
          std::string("INSERT INTO alerts (result_id, rule, state, value, target_low, target_high, "
                      "ref_low, ref_high, created_at, updated_at, evidence) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") +
              db.returning("alert_id")),
      active_alerts(db,
                    "SELECT alert_id, rule, state, value, target_low, target_high FROM alerts "
                    "WHERE result_id = ? AND " +
                        active_alert_condition("state") + " ORDER BY alert_id"),
      find_alert(db, "SELECT alert_id, state FROM alerts WHERE result_id = ? AND rule = ?"),
      set_alert_state(db, "UPDATE alerts SET state = ?, updated_at = ? WHERE alert_id = ?"),
      reopen_alert(db,
                   "UPDATE alerts SET state = ?, value = ?, target_low = ?, target_high = ?, "
                   "ref_low = ?, ref_high = ?, updated_at = ?, evidence = ? WHERE alert_id = ?"),
      alert_notices(db, std::string("SELECT n.notice_id, o.outbox_id, o.state, o.attempts, "
                                    "o.practitioner_id, o.email, o.name, o.full_phi, o.message_id "
                                    "FROM notices n JOIN outbox o ON o.outbox_id = n.outbox_id "
                                    "WHERE n.alert_id = ? ORDER BY n.notice_id") +
                            lock_outbox_rows(db)),
      move_notices(db, "UPDATE notices SET alert_id = ?, result_id = ? WHERE alert_id = ?"),
      delete_notice(db, "DELETE FROM notices WHERE notice_id = ?"),
      delete_empty_item(db,
                        "DELETE FROM outbox WHERE outbox_id = ?1 AND state = 'pending' AND "
                        "attempts = 0 AND NOT EXISTS (SELECT 1 FROM notices WHERE outbox_id = ?1)"),
      find_open_item(db, std::string("SELECT outbox_id FROM outbox o WHERE email = ? AND "
                                     "person_id = ? AND state = 'pending' AND attempts = 0 "
                                     "ORDER BY outbox_id LIMIT 1") +
                             lock_outbox_rows(db)),
      insert_item(
          db, std::string("INSERT INTO outbox (message_id, practitioner_id, email, name, full_phi, "
                          "person_id, patient_key, report_ref, state, created_at, due_at, "
                          "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)") +
                  db.returning("outbox_id")),
      // A mail about a panel that arrived in several messages names each report once; the list
      // stops growing at 200 characters (a mail that waited long for a relay collects many).
      add_report_ref(
          db,
          "UPDATE outbox SET report_ref = CASE WHEN report_ref = '' THEN ?1 "
          "ELSE report_ref || ', ' || ?1 END WHERE outbox_id = ?2 AND "
          "replace(', ' || report_ref || ',', ', ' || ?1 || ',', '') = ', ' || report_ref || ',' "
          "AND "
          "length(report_ref) < 200"),
      insert_notice(db,
                    "INSERT INTO notices (outbox_id, alert_id, result_id, kind, previous_value, "
                    "previous_message_id) VALUES (?, ?, ?, ?, ?, ?)"),
      current_history(db,
                      "SELECT result_id, collected_at, value, ref_low, ref_high FROM results "
                      "WHERE person_id = ? AND analyte = ? AND state = 'current' "
                      "ORDER BY collected_at, result_id"),
      active_silences(db,
                      "SELECT silence_id, until_at, set_side, set_tier FROM silences "
                      "WHERE person_id = ? AND analyte = ? AND expired_at IS NULL AND "
                      "until_at > ? ORDER BY silence_id") {}

AlertLedger::AlertLedger(sql::Database& db, LedgerStatements& statements,
                         const AlertPolicy& targets, clinical::UnixSeconds now,
                         IngestSummary& summary)
    : db_(db), statements_(statements), targets_(targets), now_(now), summary_(summary) {}

void AlertLedger::route(std::string_view provider_id, std::string_view facility_code) {
  recipients_ = clinical::recipients_for(targets_.routing, provider_id, facility_code);
}

void AlertLedger::begin_report(const clinical::NormalizedReport& report, std::int64_t person_id,
                               std::string_view file_name) {
  route(report.ordering_provider_id, report.facility);
  person_id_ = person_id;
  patient_key_ = report.patient.patient_key();
  report_ref_ = report.control_id;
  for (const clinical::NormalizedResult& result : report.results) {
    if (!report_ref_.empty()) {
      break;
    }
    report_ref_ = result.order_id;
  }
  if (report_ref_.empty()) {
    report_ref_ = file_name;
  }
  items_with_ref_.clear();
}

// Why the decision of the new version is compared with the alert of the version it replaces: a
// final that confirms its preliminary, or a resend, must not mail the practitioner twice, while a
// corrected value, a value back inside its target or a cancellation changes what they were told.
// Trend rules are judged again for the new version and for the later results whose run it is in,
// so that the final set of alerts does not depend on the order in which results arrive.
void AlertLedger::version_current(const CurrentVersion& current,
                                  const std::optional<ReplacedVersion>& replaced) {
  const clinical::NormalizedResult& result = *current.result;
  load_silences(current.person_id, result.analyte);
  flags_ = result.flags;
  std::vector<ActiveAlert> earlier;
  if (replaced) {
    earlier = active_alerts(replaced->result_id);
  }
  const clinical::Decision decision = clinical::judge_result(result, targets_);
  const clinical::MailVerdict verdict = clinical::decide_mail(
      {result.collected_at, now_, result.status, !recipients_.empty()}, targets_.mail_policy);
  const auto target = std::find_if(earlier.begin(), earlier.end(),
                                   [](const ActiveAlert& a) { return !a.ref.is_trend(); });
  const bool corrected = result.status == clinical::ResultStatus::corrected;
  settle(target != earlier.end() ? &*target : nullptr, current.result_id, decision, corrected,
         verdict);

  clinical::UnixSeconds from = result.collected_at;
  if (replaced) {
    from = std::min(from, replaced->collected_at);
  }
  judge_trends(current.person_id, result.analyte, from, &current, &earlier, verdict,
               replaced ? std::optional(replaced->result_id) : std::nullopt);
  // Alerts of rules no longer configured (a trend rule removed since) leave with their version.
  for (ActiveAlert& alert : earlier) {
    if (!alert.settled) {
      close(alert, clinical::ClosingCause::superseded, 0);
    }
  }
}

void AlertLedger::version_withdrawn(const ReplacedVersion& withdrawn, std::int64_t person_id,
                                    std::string_view analyte) {
  for (ActiveAlert& alert : active_alerts(withdrawn.result_id)) {
    close(alert, clinical::ClosingCause::withdrawn_by_lab, withdrawn.result_id);
  }
  load_silences(person_id, analyte);
  judge_trends(person_id, analyte, withdrawn.collected_at, nullptr, nullptr,
               clinical::MailVerdict::no_recipient, withdrawn.result_id);
}

void AlertLedger::version_promoted(std::int64_t result_id, clinical::UnixSeconds collected_at) {
  const clinical::MailVerdict final_verdict = clinical::decide_mail(
      {collected_at, now_, clinical::ResultStatus::final, !recipients_.empty()},
      targets_.mail_policy);
  silences_.clear();
  if (silences_in_force()) {
    // A silence set while the value was preliminary covers its final too.
    sql::Statement owner(db_, "SELECT person_id, analyte FROM results WHERE result_id = ?");
    owner.bind(1, result_id);
    if (owner.step()) {
      load_silences(owner.column(0).as_int64(), owner.column(1).as_string());
    }
  }
  for (ActiveAlert& alert : active_alerts(result_id)) {
    const clinical::AlertState state_of =
        clinical::alert_state_of(alert.ref, alert.value, alert.target_low, alert.target_high);
    apply(clinical::plan_promotion({alert.rule, alert.state}, state_of, final_verdict, silences_,
                                   now_),
          &alert, result_id, nullptr);
  }
}

// A merge or unmerge makes no result new, but the person's latest result of the analyte is what
// a practitioner acts on: a trend it now violates is mailed as an alert, to the recipients its
// report is routed to (by facility: the ordering provider is not stored), naming that report.
void AlertLedger::rejudge_person(std::int64_t person_id, std::string_view analyte) {
  forget_histories();  // the person's results changed hands outside this ledger
  clinical::UnixSeconds latest_collected = 0;
  {
    sql::Statement latest(db_,
                          "SELECT m.facility, m.patient_key, m.control_id, r.order_id, "
                          "r.collected_at "
                          "FROM results r JOIN messages m ON m.message_id = r.message_id "
                          "WHERE r.person_id = ? AND r.analyte = ? AND r.state = 'current' "
                          "ORDER BY r.collected_at DESC, r.result_id DESC LIMIT 1");
    latest.bind(1, person_id);
    latest.bind(2, std::string(analyte));
    if (!latest.step()) {
      return;
    }
    route("", latest.column(0).as_string());
    person_id_ = person_id;
    patient_key_ = latest.column(1).as_string();
    report_ref_ = latest.column(2).as_string();
    if (report_ref_.empty()) {
      report_ref_ = latest.column(3).as_string();
    }
    latest_collected = latest.column(4).as_int64();
    items_with_ref_.clear();
  }
  load_silences(person_id, analyte);
  flags_.clear();
  // Mailed as a new final result's alert would be: an old one is history (clinical::decide_mail).
  const clinical::MailVerdict verdict = clinical::decide_mail(
      {latest_collected, now_, clinical::ResultStatus::final, !recipients_.empty()},
      targets_.mail_policy);
  judge_trends(person_id, analyte, std::numeric_limits<clinical::UnixSeconds>::min(), nullptr,
               nullptr, verdict, std::nullopt, true);
}

void AlertLedger::resilence_person(std::int64_t person_id) {
  if (!silences_in_force()) {
    return;
  }
  struct QueuedAlert {
    ActiveAlert alert;
    std::string analyte;
    std::string flags;
  };
  std::vector<QueuedAlert> queued;
  {
    sql::Statement query(
        db_,
        "SELECT a.alert_id, a.rule, a.state, a.value, a.target_low, a.target_high, a.result_id, "
        "r.analyte, r.flags FROM alerts a JOIN results r ON r.result_id = a.result_id "
        "WHERE r.person_id = ? AND r.state = 'current' AND a.state = ? ORDER BY a.alert_id");
    query.bind(1, person_id);
    query.bind(2, std::string(clinical::to_string(AlertStatus::pending)));
    while (query.step()) {
      QueuedAlert& q = queued.emplace_back();
      q.alert = read_active_alert(query, query.column(6).as_int64());
      q.analyte = query.column(7).as_string();
      q.flags = query.column(8).as_string();
    }
  }
  for (QueuedAlert& q : queued) {
    load_silences(person_id, q.analyte);
    if (silences_.empty()) {
      continue;
    }
    const std::vector<NoticeRow> rows = notices_of(q.alert.alert_id);
    const bool all_unsent =
        std::all_of(rows.begin(), rows.end(), [](const NoticeRow& row) { return row.unsent; });
    const clinical::AlertState state_of = clinical::alert_state_of(
        q.alert.ref, q.alert.value, q.alert.target_low, q.alert.target_high, q.flags);
    apply(clinical::plan_new_silence({q.alert.rule, q.alert.state}, state_of, silences_, now_,
                                     all_unsent),
          &q.alert, q.alert.result_id, nullptr);
  }
}

void AlertLedger::version_superseded(std::int64_t result_id) {
  forget_histories();  // whose history it left is not said; rare (a stand-in, an odd plan)
  for (ActiveAlert& alert : active_alerts(result_id)) {
    close(alert, clinical::ClosingCause::superseded, 0);
  }
}

std::vector<AlertLedger::ActiveAlert> AlertLedger::active_alerts(std::int64_t result_id) {
  std::vector<ActiveAlert> alerts;
  sql::Statement& query = fresh(statements_.active_alerts);
  const ResetOnExit reset(query);
  query.bind(1, result_id);
  while (query.step()) {
    alerts.push_back(read_active_alert(query, result_id));
  }
  return alerts;
}

AlertLedger::ActiveAlert AlertLedger::read_active_alert(sql::Statement& query,
                                                        std::int64_t result_id) {
  ActiveAlert alert;
  alert.alert_id = query.column(0).as_int64();
  alert.result_id = result_id;
  alert.rule = query.column(1).as_string();
  alert.ref = clinical::rule_ref(alert.rule);
  alert.state = read_alert_status(query.column(2));
  alert.value = query.column(3).as_double();
  alert.target_low = read_optional(query.column(4));
  alert.target_high = read_optional(query.column(5));
  return alert;
}

// One rule's decision for a new current version, against the alert of the same slot (the optimal
// target, or one trend clause) on the version it replaces: clinical::plan_alerts decides, this
// applies. `verdict` (clinical::decide_mail) says whether this report's recipients are told of a
// new alert.
void AlertLedger::settle(ActiveAlert* earlier, std::int64_t result_id,
                         const clinical::Decision& decision, bool corrected,
                         clinical::MailVerdict verdict) {
  if (earlier != nullptr) {
    earlier->settled = true;
  }
  clinical::SlotFacts facts;
  if (earlier != nullptr) {
    facts.earlier = clinical::EarlierAlert{earlier->rule, earlier->state};
  }
  facts.corrected = corrected;
  facts.verdict = verdict;
  facts.silences = silences_;
  facts.flags = flags_;
  facts.now = now_;
  apply(clinical::plan_alerts(decision, facts), earlier, result_id, &decision);
}

// Moves an active alert out of the current set: withdrawn by the lab, or superseded.
void AlertLedger::close(ActiveAlert& alert, clinical::ClosingCause cause,
                        std::int64_t notice_result_id) {
  alert.settled = true;
  apply(clinical::plan_closing(cause), &alert, notice_result_id, nullptr);
}

// The recipients `audience` names: this report's, and whoever may have been told about the
// earlier alert, each address once.
std::vector<Recipient> AlertLedger::audience_of(clinical::Audience audience,
                                                const std::vector<Told>& told) const {
  std::vector<Recipient> recipients;
  if (audience == clinical::Audience::report || audience == clinical::Audience::report_and_told) {
    recipients = recipients_;
  }
  if (audience == clinical::Audience::told || audience == clinical::Audience::report_and_told) {
    for (const Told& t : told) {
      const bool listed = std::any_of(recipients.begin(), recipients.end(),
                                      [&](const auto& r) { return r.email == t.recipient.email; });
      if (!listed) {
        recipients.push_back(t.recipient);
      }
    }
  }
  return recipients;
}

void AlertLedger::apply(const clinical::AlertPlan& plan, ActiveAlert* earlier,
                        std::int64_t result_id, const clinical::Decision* decision) {
  using Audience = clinical::Audience;
  const auto names_told = [](Audience a) {
    return a == Audience::told || a == Audience::report_and_told;
  };
  // The earlier alert's notices are read only when the plan needs them (most plans do not).
  std::vector<NoticeRow> rows;
  std::vector<Told> told;
  if (earlier != nullptr && (plan.take_back_unsent || (plan.notice && names_told(plan.audience)) ||
                             (plan.earlier_notice && names_told(plan.earlier_audience)))) {
    rows = notices_of(earlier->alert_id);
    told = told_from(rows);
  }
  if (plan.raise != clinical::AlertPlan::Raise::none && decision != nullptr) {
    std::vector<Recipient> recipients;
    if (plan.notice) {
      recipients = audience_of(plan.audience, told);
    }
    AlertStatus state = recipients.empty() ? plan.state : AlertStatus::pending;
    std::int64_t alert_id = 0;
    if (plan.raise == clinical::AlertPlan::Raise::reopen && earlier != nullptr) {
      reopen_alert(*earlier, *decision, state);
      alert_id = earlier->alert_id;
    } else {
      alert_id = insert_alert(result_id, *decision, state);
    }
    if (plan.take_over_notices && earlier != nullptr) {
      sql::Statement& move = fresh(statements_.move_notices);
      move.bind(1, alert_id);
      move.bind(2, result_id);
      move.bind(3, earlier->alert_id);
      move.exec();
    }
    if (plan.notice) {
      std::optional<double> previous;
      if (plan.notice_shows_earlier_value && earlier != nullptr) {
        previous = earlier->value;
      }
      queue({*plan.notice, alert_id, result_id, previous}, recipients, told);
    }
  }
  if (earlier == nullptr) {
    return;
  }
  if (plan.earlier_notice) {
    std::optional<double> previous;
    if (plan.earlier_notice_shows_its_value) {
      previous = earlier->value;
    }
    queue({*plan.earlier_notice, earlier->alert_id, result_id, previous},
          audience_of(plan.earlier_audience, told), told);
  }
  if (plan.take_back_unsent) {
    drop_unsent(rows);
  }
  if (plan.earlier_to) {
    set_alert_state(*earlier, *plan.earlier_to);
  }
}

std::int64_t AlertLedger::insert_alert(std::int64_t result_id, const clinical::Decision& decision,
                                       AlertStatus state) {
  sql::Statement& insert = fresh(statements_.insert_alert);
  insert.bind(1, result_id);
  insert.bind_no_copy(2, decision.rule);
  bind_judgement(insert, 3, state, decision);
  insert.bind(9, now_);
  insert.bind(10, now_);
  insert.bind(11, evidence_text(decision.evidence));
  const std::int64_t alert_id = inserted_id(db_, insert);
  ++summary_.alerts;
  if (decision.ref.is_trend()) {
    if (trend_alerts_.size() >= kMaxTrendAlertsKept) {
      trend_alerts_.clear();
      trend_alert_bits_.clear();
      first_new_result_.reset();  // read again: the results from here on have none yet
    }
    keep_trend_alert(result_id, decision.ref, decision.rule, alert_id, state);
  }
  return alert_id;
}

void AlertLedger::set_alert_state(const ActiveAlert& alert, AlertStatus state) {
  keep_trend_alert(alert.result_id, alert.ref, alert.rule, alert.alert_id, state);
  const std::int64_t alert_id = alert.alert_id;
  sql::Statement& update = fresh(statements_.set_alert_state);
  update.bind(1, std::string(clinical::to_string(state)));
  update.bind(2, now_);
  update.bind(3, alert_id);
  update.exec();
}

std::vector<AlertLedger::NoticeRow> AlertLedger::notices_of(std::int64_t alert_id) {
  std::vector<NoticeRow> rows;
  sql::Statement& query = fresh(statements_.alert_notices);
  const ResetOnExit reset(query);
  query.bind(1, alert_id);
  while (query.step()) {
    NoticeRow& row = rows.emplace_back();
    row.notice_id = query.column(0).as_int64();
    row.outbox_id = query.column(1).as_int64();
    const OutboxState item_state = read_outbox_state(query.column(2));
    const int attempts = query.column(3).as_int();
    // A mail once attempted may have arrived (a timeout after the final dot); only a permanent
    // failure says it did not.
    row.unsent = item_state == OutboxState::pending && attempts == 0;
    row.may_have_told = !row.unsent && item_state != OutboxState::failed;
    row.recipient.practitioner_id = query.column(4).as_string();
    row.recipient.email = query.column(5).as_string();
    row.recipient.name = query.column(6).as_string();
    row.recipient.full_phi = query.column(7).as_int() != 0;
    row.message_id = query.column(8).as_string();
  }
  return rows;
}

std::vector<AlertLedger::Told> AlertLedger::told_from(const std::vector<NoticeRow>& rows) {
  std::vector<Told> told;
  for (const NoticeRow& row : rows) {
    if (!row.may_have_told) {
      continue;
    }
    const auto same = std::find_if(told.begin(), told.end(), [&](const Told& t) {
      return t.recipient.email == row.recipient.email;
    });
    if (same == told.end()) {
      told.push_back({row.recipient, row.message_id});
    } else {
      same->message_id = row.message_id;  // rows come oldest first: refer to the latest mail
    }
  }
  return told;
}

void AlertLedger::drop_unsent(const std::vector<NoticeRow>& rows) {
  for (const NoticeRow& row : rows) {
    if (!row.unsent) {
      continue;
    }
    sql::Statement& remove = fresh(statements_.delete_notice);
    remove.bind(1, row.notice_id);
    remove.exec();
    sql::Statement& remove_item = fresh(statements_.delete_empty_item);
    remove_item.bind(1, row.outbox_id);
    remove_item.exec();
  }
}

void AlertLedger::queue(const Queued& notice, const std::vector<Recipient>& recipients,
                        const std::vector<Told>& told) {
  for (const Recipient& recipient : recipients) {
    const std::int64_t item = open_item(recipient);
    const auto earlier = std::find_if(told.begin(), told.end(), [&](const Told& t) {
      return t.recipient.email == recipient.email;
    });
    sql::Statement& insert = fresh(statements_.insert_notice);
    insert.bind(1, item);
    insert.bind(2, notice.alert_id);
    insert.bind(3, notice.result_id);
    insert.bind(4, std::string(to_string(notice.kind)));
    bind_optional(insert, 5, notice.previous_value);
    insert.bind(6, earlier != told.end() ? earlier->message_id : std::string());
    insert.exec();
    ++summary_.notices;
  }
}

// The mail a notice for `recipient` about this report's person goes into: the one still open
// (queued, never attempted), so that a panel arriving within the collect wait makes one mail; else
// a new one, due after the collect wait, with its own Message-ID.
std::int64_t AlertLedger::open_item(const Recipient& recipient) {
  std::optional<std::int64_t> found;
  {
    sql::Statement& find = fresh(statements_.find_open_item);
    const ResetOnExit reset(find);
    find.bind(1, recipient.email);
    find.bind(2, person_id_);
    if (find.step()) {
      found = find.column(0).as_int64();
    }
  }
  if (found) {
    if (std::find(items_with_ref_.begin(), items_with_ref_.end(), *found) ==
        items_with_ref_.end()) {
      sql::Statement& add = fresh(statements_.add_report_ref);
      add.bind(1, report_ref_);
      add.bind(2, *found);
      add.exec();
      items_with_ref_.push_back(*found);
    }
    return *found;
  }
  const clinical::UnixSeconds due =
      now_ + std::max<std::int64_t>(0, targets_.routing.collect_wait_seconds);
  sql::Statement& insert = fresh(statements_.insert_item);
  insert.bind(1, new_message_id());
  insert.bind(2, recipient.practitioner_id);
  insert.bind(3, recipient.email);
  insert.bind(4, recipient.name);
  insert.bind(5, recipient.full_phi ? 1 : 0);
  insert.bind(6, person_id_);
  insert.bind(7, patient_key_);
  insert.bind(8, report_ref_);
  insert.bind(9, now_);
  insert.bind(10, due);
  insert.bind(11, due);
  const std::int64_t item = inserted_id(db_, insert);
  items_with_ref_.push_back(item);
  return item;
}

// Judges the trend rules of `analyte` for the person's current results from time `from` on: the
// new current version (settled against the alerts of the version it replaced, mailed like any new
// alert) and the later results whose run includes a changed point (their alerts are raised
// unmailed, as history, or resolved).
void AlertLedger::judge_trends(std::int64_t person_id, std::string_view analyte,
                               clinical::UnixSeconds from, const CurrentVersion* current,
                               std::vector<ActiveAlert>* earlier, clinical::MailVerdict verdict,
                               std::optional<std::int64_t> removed, bool to_the_end) {
  const std::string_view key = clinical::trended_analyte(targets_, analyte);
  if (key.empty()) {
    return;
  }
  const History& kept = history(person_id, key, removed, current);
  std::vector<clinical::TrendPoint>& points = trend_points_;
  points.clear();
  for (const KeptPoint& point : kept) {
    points.push_back(
        {point.value, bound_of(point.ref_low), bound_of(point.ref_high), point.collected_at});
  }
  std::optional<std::size_t> changed;
  if (current != nullptr) {
    const auto at = std::find_if(kept.begin(), kept.end(), [&](const KeptPoint& point) {
      return point.result_id == current->result_id;
    });
    if (at != kept.end()) {
      changed = static_cast<std::size_t>(at - kept.begin());
    }
  }
  std::vector<clinical::TrendJudgement>& judgements = trend_judgements_;
  clinical::judge_trends(targets_, key, points, from, changed, to_the_end, judgements);
  for (const clinical::TrendJudgement& judged : judgements) {
    const std::int64_t result_id = kept[judged.index].result_id;
    if (current != nullptr && result_id == current->result_id) {
      ActiveAlert* slot = nullptr;
      if (earlier != nullptr) {
        const auto same = std::find_if(earlier->begin(), earlier->end(), [&](const auto& a) {
          return !a.settled && a.rule == judged.rule;
        });
        slot = same != earlier->end() ? &*same : nullptr;
      }
      settle(slot, result_id, judged.decision,
             current->result->status == clinical::ResultStatus::corrected, verdict);
    } else if (to_the_end && judged.index + 1 == kept.size() && judged.decision.violated &&
               !find_trend_alert(result_id, judged.rule, judged.ref)) {
      settle(nullptr, result_id, judged.decision, false,
             verdict);  // mailed like the alert of a new result
    } else {
      rejudge_trend(result_id, judged);
    }
  }
}

std::optional<AlertLedger::ActiveAlert> AlertLedger::find_alert(std::int64_t result_id,
                                                                std::string_view rule,
                                                                const clinical::RuleRef& ref) {
  std::optional<ActiveAlert> existing;
  sql::Statement& find = fresh(statements_.find_alert);
  const ResetOnExit reset(find);
  find.bind(1, result_id);
  find.bind(2, std::string(rule));
  if (find.step()) {
    existing.emplace();
    existing->alert_id = find.column(0).as_int64();
    existing->result_id = result_id;
    existing->rule = rule;
    existing->ref = ref;
    existing->state = read_alert_status(find.column(1));
  }
  return existing;
}

std::optional<AlertLedger::ActiveAlert> AlertLedger::find_trend_alert(
    std::int64_t result_id, std::string_view rule, const clinical::RuleRef& ref) {
  if (!first_new_result_) {
    first_new_result_ = db_.query_int64("SELECT coalesce(max(result_id), 0) + 1 FROM results");
  }
  const std::optional<std::size_t> index = trend_rule_index(rule);
  if (result_id < *first_new_result_ || !index) {
    return find_alert(result_id, rule, ref);
  }
  const std::size_t bit = TrendAlertKeyHash{}({result_id, *index}) % kTrendAlertBits;
  if (trend_alert_bits_.empty() ||
      (trend_alert_bits_[bit / 64] & (std::uint64_t{1} << (bit % 64))) == 0) {
    return std::nullopt;
  }
  const auto kept = trend_alerts_.find({result_id, *index});
  if (kept == trend_alerts_.end()) {
    return std::nullopt;  // inserted after this ledger began, and not by it: it has none
  }
  ActiveAlert alert;
  alert.alert_id = kept->second.alert_id;
  alert.result_id = result_id;
  alert.rule = rule;
  alert.ref = ref;
  alert.state = kept->second.state;
  return alert;
}

std::optional<std::size_t> AlertLedger::trend_rule_index(std::string_view rule) {
  if (trend_rules_.empty()) {
    trend_rules_ = clinical::trend_rule_names(targets_);
  }
  const auto at = std::find(trend_rules_.begin(), trend_rules_.end(), rule);
  if (at == trend_rules_.end()) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(at - trend_rules_.begin());
}

void AlertLedger::keep_trend_alert(std::int64_t result_id, const clinical::RuleRef& ref,
                                   std::string_view rule, std::int64_t alert_id,
                                   AlertStatus state) {
  if (!ref.is_trend() || (first_new_result_ && result_id < *first_new_result_)) {
    return;  // an older result's alert is read when needed, never looked up here
  }
  const std::optional<std::size_t> index = trend_rule_index(rule);
  if (!index) {
    return;  // a rule no longer configured: never looked up here
  }
  if (trend_alert_bits_.empty()) {
    trend_alert_bits_.resize(kTrendAlertBits / 64);
  }
  const std::size_t bit = TrendAlertKeyHash{}({result_id, *index}) % kTrendAlertBits;
  trend_alert_bits_[bit / 64] |= std::uint64_t{1} << (bit % 64);
  trend_alerts_[{result_id, *index}] = {alert_id, state};
}

std::size_t AlertLedger::TrendAlertKeyHash::operator()(const TrendAlertKey& key) const noexcept {
  return static_cast<std::size_t>(key.result_id) * 0x9E3779B97F4A7C15ULL ^ key.rule;
}

std::size_t AlertLedger::HistoryKeyHash::operator()(const HistoryKey& key) const noexcept {
  return static_cast<std::size_t>(key.person_id) * 0x9E3779B97F4A7C15ULL ^
         std::hash<std::string_view>{}(key.analyte);
}

AlertLedger::History& AlertLedger::history(std::int64_t person_id, std::string_view analyte,
                                           std::optional<std::int64_t> removed,
                                           const CurrentVersion* added) {
  const HistoryKey key{person_id, analyte};
  if (const auto kept = histories_.find(key); kept != histories_.end()) {
    if (keep_in_step(kept->second, removed, added)) {
      return kept->second;
    }
    forget_histories();  // the version left another history than this one: read them again
  }
  if (history_points_ > kMaxHistoryPoints) {
    forget_histories();
  }
  // Read as the database has it now, the change included.
  History& read = histories_[key];
  sql::Statement& query = fresh(statements_.current_history);
  const ResetOnExit reset(query);
  query.bind(1, person_id);
  query.bind(2, std::string(analyte));
  while (query.step()) {
    read.push_back({query.column(0).as_int64(), query.column(1).as_int64(),
                    query.column(2).as_double(), kept_bound(read_optional(query.column(3))),
                    kept_bound(read_optional(query.column(4)))});
  }
  history_points_ += read.size();
  return read;
}

bool AlertLedger::keep_in_step(History& history, std::optional<std::int64_t> removed,
                               const CurrentVersion* added) {
  if (removed) {
    const auto at = std::find_if(history.begin(), history.end(), [&](const KeptPoint& point) {
      return point.result_id == *removed;
    });
    if (at == history.end()) {
      return false;
    }
    history.erase(at);
    --history_points_;
  }
  if (added != nullptr) {
    const clinical::NormalizedResult& result = *added->result;
    const KeptPoint point{added->result_id, result.collected_at, result.value,
                          kept_bound(result.ref_low), kept_bound(result.ref_high)};
    // In (collected_at, result_id) order, as the history is read.
    const auto at = std::upper_bound(
        history.begin(), history.end(), point, [](const KeptPoint& a, const KeptPoint& b) {
          return a.collected_at != b.collected_at ? a.collected_at < b.collected_at
                                                  : a.result_id < b.result_id;
        });
    history.insert(at, point);
    ++history_points_;
  }
  return true;
}

void AlertLedger::forget_histories() {
  histories_.clear();
  history_points_ = 0;
}

void AlertLedger::rejudge_trend(std::int64_t result_id, const clinical::TrendJudgement& judged) {
  const clinical::Decision& decision = judged.decision;
  std::optional<ActiveAlert> existing = find_trend_alert(result_id, judged.rule, judged.ref);
  std::optional<clinical::EarlierAlert> before;
  if (existing) {
    before = clinical::EarlierAlert{existing->rule, existing->state};
  }
  apply(clinical::plan_rejudged_trend(decision.violated, before), existing ? &*existing : nullptr,
        result_id, &decision);
}

void AlertLedger::reopen_alert(const ActiveAlert& alert, const clinical::Decision& decision,
                               AlertStatus state) {
  sql::Statement& reopen = fresh(statements_.reopen_alert);
  bind_judgement(reopen, 1, state, decision);
  reopen.bind(7, now_);
  reopen.bind(8, evidence_text(decision.evidence));
  reopen.bind(9, alert.alert_id);
  reopen.exec();
  keep_trend_alert(alert.result_id, alert.ref, alert.rule, alert.alert_id, state);
  ++summary_.alerts;
}

bool AlertLedger::silences_in_force() {
  if (!any_silence_) {
    sql::Statement any(db_,
                       "SELECT EXISTS (SELECT 1 FROM silences WHERE expired_at IS NULL AND "
                       "until_at > ?)");
    any.bind(1, now_);
    any_silence_ = any.step() && any.column(0).as_int() != 0;
  }
  return *any_silence_;
}

void AlertLedger::load_silences(std::int64_t person_id, std::string_view analyte) {
  silences_.clear();
  if (!silences_in_force()) {
    return;
  }
  sql::Statement& query = fresh(statements_.active_silences);
  const ResetOnExit reset(query);
  query.bind(1, person_id);
  query.bind(2, std::string(analyte));
  query.bind(3, now_);
  while (query.step()) {
    clinical::Silence& silence = silences_.emplace_back();
    silence.silence_id = query.column(0).as_int64();
    silence.until = query.column(1).as_int64();
    const auto side = clinical::read_alert_side(query.column(2).as_string());
    const auto tier = clinical::read_alert_tier(query.column(3).as_string());
    if (side && tier) {
      silence.set_for = clinical::AlertState{*side, *tier};
    }
  }
}

std::string new_message_id() {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::random_device device;
  std::string id;
  id.reserve(32 + 9);
  for (int word = 0; word < 4; ++word) {  // 4 x 32 bits
    const auto bits = static_cast<std::uint32_t>(device());
    for (int shift = 28; shift >= 0; shift -= 4) {
      id.push_back(kHex[(bits >> static_cast<unsigned>(shift)) & 0xFu]);
    }
  }
  id += "@labwatch";
  return id;
}

}  // namespace labwatch::storage
