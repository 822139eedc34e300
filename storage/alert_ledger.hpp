// SPDX-License-Identifier: Apache-2.0
// The alert ledger: alerts that follow their result's versions, and the mail notices they queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "clinical/alert_plan.hpp"
#include "clinical/alert_policy.hpp"
#include "clinical/alert_status.hpp"
#include "clinical/mail_policy.hpp"
#include "clinical/normalized.hpp"
#include "clinical/silence.hpp"
#include "storage/outbox.hpp"
#include "storage/sql.hpp"
#include "storage/store.hpp"

namespace labwatch::storage {

// The statements of the ledger, prepared once per connection like IngestStatements.
struct LedgerStatements {
  explicit LedgerStatements(sql::Database& db);

  sql::Statement insert_alert;
  sql::Statement active_alerts;
  sql::Statement find_alert;
  sql::Statement set_alert_state;
  sql::Statement reopen_alert;
  sql::Statement alert_notices;
  sql::Statement move_notices;
  sql::Statement delete_notice;
  sql::Statement delete_empty_item;
  sql::Statement find_open_item;
  sql::Statement insert_item;
  sql::Statement add_report_ref;
  sql::Statement insert_notice;
  sql::Statement current_history;
  sql::Statement active_silences;
};

// What the ledger needs to know about a version that became current.
struct CurrentVersion {
  std::int64_t result_id = 0;
  const clinical::NormalizedResult* result = nullptr;
  std::int64_t person_id = 0;
};

// A version that left the current set, and why.
struct ReplacedVersion {
  std::int64_t result_id = 0;
  clinical::UnixSeconds collected_at = 0;
};

// The ledger of one file transaction: decides, for every change of the current set, which alerts
// are raised, kept, resolved, superseded or withdrawn, and queues the notices that tell the
// recipients who need to know. Writes through the transaction's connection; never commits.
class AlertLedger {
 public:
  AlertLedger(sql::Database& db, LedgerStatements& statements, const AlertPolicy& targets,
              clinical::UnixSeconds now, IngestSummary& summary);

  // Sets who is told about the results of `report` (about person `person_id`) that follow, by
  // AlertPolicy::routing, and how a mail names the report: its control id, else its first order id,
  // else `file_name`.
  void begin_report(const clinical::NormalizedReport& report, std::int64_t person_id,
                    std::string_view file_name);

  // `current` became the current version of its result, replacing `replaced` (the version that was
  // current, now superseded) when there was one. Raises, keeps or settles the alerts of both.
  void version_current(const CurrentVersion& current,
                       const std::optional<ReplacedVersion>& replaced);

  // `withdrawn` (current until now) was withdrawn by a cancellation of its result: its alerts are
  // withdrawn, and whoever may have been told gets a retraction. Trends are judged again after it.
  void version_withdrawn(const ReplacedVersion& withdrawn, std::int64_t person_id,
                         std::string_view analyte);

  // `result_id`, preliminary until now, was made final in place (OBX-11 U, collected at
  // `collected_at`): its alerts held as preliminary are decided anew as a final value's
  // (clinical::decide_mail), and mailed to this report's recipients when the verdict says so.
  void version_promoted(std::int64_t result_id, clinical::UnixSeconds collected_at);

  // The person's results changed hands (a merge or an unmerge of identities): the trend rules of
  // `analyte` are judged again over all of the person's current results. Alerts that no longer
  // hold are resolved (whoever may have been told gets a resolution); a new one on the latest
  // result is mailed like a new result's (routed by its report's facility), new ones on earlier
  // results are raised unmailed, as history; an alert that still holds is kept as it is, so
  // nothing already mailed is mailed again.
  void rejudge_person(std::int64_t person_id, std::string_view analyte);

  // The silences of `person_id` changed hands (a merge brought another identity's): each of the
  // person's alerts queued for mail and never attempted is held as silenced when a silence in
  // force now covers it (clinical::plan_new_silence).
  void resilence_person(std::int64_t person_id);

  // `superseded` left the current set without a current successor (not expected of plan_version):
  // its active alerts become 'superseded', silently.
  void version_superseded(std::int64_t result_id);

  // A version became current by another way than version_current (the ledger is not told whose
  // history it joined): the trend histories kept so far are read again when needed.
  void forget_histories();

 private:
  struct ActiveAlert {
    std::int64_t alert_id = 0;
    std::int64_t result_id = 0;
    std::string rule;
    clinical::RuleRef ref;  // what `rule` names
    clinical::AlertStatus state = clinical::AlertStatus::unmailed;
    double value = 0;
    std::optional<double> target_low;
    std::optional<double> target_high;
    bool settled = false;
  };
  struct NoticeRow {  // a notice of an alert, with the item it is in
    std::int64_t notice_id = 0;
    std::int64_t outbox_id = 0;
    bool unsent = false;         // in a pending item never attempted: it can still be taken back
    bool may_have_told = false;  // in a sent item, or one attempted and not failed
    Recipient recipient;
    std::string message_id;
  };
  struct Told {  // a recipient who may have been told about an alert, and by which mail
    Recipient recipient;
    std::string message_id;
  };
  struct Queued {
    clinical::NoticeKind kind = clinical::NoticeKind::alert;
    std::int64_t alert_id = 0;
    std::int64_t result_id = 0;  // whose value the notice shows
    std::optional<double> previous_value;
  };

  // One person's current results of one analyte, in (collected_at, result_id) order: what the
  // trend rules judge.
  struct KeptPoint {  // 40 bytes where an id and a TrendPoint take 56: a bound absent is NaN
    std::int64_t result_id = 0;
    clinical::UnixSeconds collected_at = 0;
    double value = 0;
    double ref_low = 0;
    double ref_high = 0;
  };
  using History = std::vector<KeptPoint>;
  struct HistoryKey {
    std::int64_t person_id = 0;
    std::string_view analyte;  // a key of targets_.trends, which outlives the ledger's histories
    bool operator==(const HistoryKey& other) const noexcept {
      return person_id == other.person_id && analyte == other.analyte;
    }
  };
  struct HistoryKeyHash {
    std::size_t operator()(const HistoryKey& key) const noexcept;
  };

  std::vector<ActiveAlert> active_alerts(std::int64_t result_id);
  // An alert of `result_id` from a row whose columns 0-5 are alert_id, rule, state, value,
  // target_low, target_high.
  static ActiveAlert read_active_alert(sql::Statement& query, std::int64_t result_id);
  // The alert of trend rule `rule` (which `ref` says what it is) on `result_id`, whatever its
  // state.
  std::optional<ActiveAlert> find_alert(std::int64_t result_id, std::string_view rule,
                                        const clinical::RuleRef& ref);
  // find_alert, without reading when this ledger knows there is none.
  std::optional<ActiveAlert> find_trend_alert(std::int64_t result_id, std::string_view rule,
                                              const clinical::RuleRef& ref);
  // A trend alert this ledger inserted: which, and its state.
  struct TrendAlertKey {
    std::int64_t result_id = 0;
    std::size_t rule = 0;  // index in trend_rules_
    bool operator==(const TrendAlertKey&) const = default;
  };
  struct TrendAlertKeyHash {
    std::size_t operator()(const TrendAlertKey& key) const noexcept;
  };
  struct KeptAlert {
    std::int64_t alert_id = 0;
    clinical::AlertStatus state = clinical::AlertStatus::unmailed;
  };
  // The index of a trend rule's text in trend_rules_, if it is one of the configured rules.
  std::optional<std::size_t> trend_rule_index(std::string_view rule);
  // Keeps a trend alert's new state in step (an alert this ledger inserted).
  void keep_trend_alert(std::int64_t result_id, const clinical::RuleRef& ref, std::string_view rule,
                        std::int64_t alert_id, clinical::AlertStatus state);
  // The history of (person_id, analyte), an analyte with trend rules (`analyte` refers to the key
  // of targets_.trends), after the change just stored: `removed` left the current set, `added`
  // joined it. Kept from an earlier read in this transaction (and brought in step), else read.
  History& history(std::int64_t person_id, std::string_view analyte,
                   std::optional<std::int64_t> removed, const CurrentVersion* added);
  // Applies that change to a kept history; false when `removed` is not in it.
  bool keep_in_step(History& history, std::optional<std::int64_t> removed,
                    const CurrentVersion* added);
  void route(std::string_view provider_id, std::string_view facility_code);
  void settle(ActiveAlert* earlier, std::int64_t result_id, const clinical::Decision& decision,
              bool corrected, clinical::MailVerdict verdict);
  void close(ActiveAlert& alert, clinical::ClosingCause cause, std::int64_t notice_result_id);
  // Applies a plan of clinical/alert_plan for the slot of `earlier` (nullptr: none): the new alert
  // about `result_id` is raised from `decision` (nullptr: the plan raises none), notices are
  // queued, the earlier alert moves on.
  void apply(const clinical::AlertPlan& plan, ActiveAlert* earlier, std::int64_t result_id,
             const clinical::Decision* decision);
  std::vector<Recipient> audience_of(clinical::Audience audience,
                                     const std::vector<Told>& told) const;
  void reopen_alert(const ActiveAlert& alert, const clinical::Decision& decision,
                    clinical::AlertStatus state);
  std::int64_t insert_alert(std::int64_t result_id, const clinical::Decision& decision,
                            clinical::AlertStatus state);
  void set_alert_state(const ActiveAlert& alert, clinical::AlertStatus state);
  std::vector<NoticeRow> notices_of(std::int64_t alert_id);
  static std::vector<Told> told_from(const std::vector<NoticeRow>& rows);
  void drop_unsent(const std::vector<NoticeRow>& rows);
  void queue(const Queued& notice, const std::vector<Recipient>& recipients,
             const std::vector<Told>& told);
  std::int64_t open_item(const Recipient& recipient);
  void judge_trends(std::int64_t person_id, std::string_view analyte, clinical::UnixSeconds from,
                    const CurrentVersion* current, std::vector<ActiveAlert>* earlier,
                    clinical::MailVerdict verdict, std::optional<std::int64_t> removed,
                    bool to_the_end = false);
  void rejudge_trend(std::int64_t result_id, const clinical::TrendJudgement& judged);
  // Whether any silence is in force at now_, asked once per ledger.
  bool silences_in_force();
  // Reads the silences of `person_id` and `analyte` in force at now_ into silences_.
  void load_silences(std::int64_t person_id, std::string_view analyte);

  sql::Database& db_;
  LedgerStatements& statements_;
  const AlertPolicy& targets_;
  clinical::UnixSeconds now_ = 0;
  IngestSummary& summary_;

  // The report being stored: its recipients (distinct addresses) and what identifies it in mail.
  std::vector<Recipient> recipients_;
  std::int64_t person_id_ = 0;
  std::string patient_key_;
  std::string report_ref_;
  std::vector<std::int64_t> items_with_ref_;  // items of this report that already name it
  // The silences in force for the person and analyte being judged (clinical::apply_silence), and
  // the lab's flags of the result judged (a lab-flag alert's side).
  std::vector<clinical::Silence> silences_;
  // Whether any silence is in force at now_ (asked once per ledger): without one, no result's
  // silences are looked up. Most databases have none, and the lookup ran for every result.
  std::optional<bool> any_silence_;
  std::string flags_;

  // What the trend judge read in this transaction. Every change of the current set of a kept
  // history goes through this ledger, which keeps it in step; so a file that brings many results
  // of one person's analyte reads its history once instead of once per result (bench/run-ingest:
  // a random-order history import). Bounded: past kMaxHistoryPoints, all are forgotten.
  std::unordered_map<HistoryKey, History, HistoryKeyHash> histories_;
  std::size_t history_points_ = 0;
  std::vector<clinical::TrendPoint> trend_points_;  // the history judged, as clinical reads it
  std::vector<clinical::TrendJudgement> trend_judgements_;  // what clinical judged of it
  // The trend alerts this ledger inserted, with their states as it set them, and the first result
  // id that did not exist when it began: a result from there on has no trend alert but those kept
  // here, so the judge does not read them again. Bounded: past a limit, the ledger reads again.
  std::vector<std::string_view> trend_rules_;  // the names of the configured trend rules
  std::unordered_map<TrendAlertKey, KeptAlert, TrendAlertKeyHash> trend_alerts_;
  // A bit per hash of the keys in trend_alerts_: a clear bit says "none" without the map's read,
  // for most results have no trend alert.
  std::vector<std::uint64_t> trend_alert_bits_;
  std::optional<std::int64_t> first_new_result_;
};

// A new Message-ID: 16 random bytes in hex, "@labwatch" (no angle brackets).
std::string new_message_id();

}  // namespace labwatch::storage
