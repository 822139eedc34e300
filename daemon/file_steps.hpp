// SPDX-License-Identifier: Apache-2.0
// What the service does with an inbox file after each stage of its intake: pure decisions, so
// that the loop in Service only carries them out (and they are tested without a daemon).
#pragma once

#include <string_view>

namespace labwatch::daemon {

// How the ingest of a file ended, as the service sees it.
enum class IngestEnd {
  accepted,       // every message and result stored (or known already)
  already_known,  // the same bytes were ingested before
  partial,        // stored, but some messages or results were refused
  refused,        // nothing stored: the file as a whole was refused
  changed,        // nothing stored: the file changed while it was read
};

// Where a file goes once its ingest ended: a file whose content was read whole goes to processed/,
// one with refusals to failed/ (with its reasons beside it), and a file that changed under the
// reader waits to settle and is read again.
enum class AfterIngest { to_processed, to_failed, settle_again };
[[nodiscard]] AfterIngest after_ingest(IngestEnd end) noexcept;

// How moving it out of the inbox went.
enum class MoveEnd {
  moved,        // it is in processed/ or failed/
  replaced,     // the name holds another file (or a changed one) now: nothing was moved
  gone,         // the move failed and the name is no longer in the inbox
  cannot_move,  // the move failed with the file still there
};

// What follows the move:
// - report: log the outcome (and, for a file with refusals, sync the directories at once: after
//   a crash it would be read again as already known and go to processed/);
// - settle_again: the file now under the name is read on its own once it settles;
// - forget: removed by its producer before it was moved, nothing to do;
// - leave: a FIFO or symlink that cannot be renamed is left where it is, not read again;
// - stop: a regular file stored but stuck in the inbox (processed/ or failed/ gone or unwritable)
//   stops the daemon rather than piling files up; a restart moves it (its hash is known).
enum class AfterMove { report, report_and_sync, settle_again, forget, leave, stop };
[[nodiscard]] AfterMove after_move(MoveEnd end, AfterIngest destination,
                                   bool regular_file) noexcept;

// After an ingest failed for an operational reason (not a busy database, not the file's content)
// for the `failures`-th time: keep the file in the inbox and stop (the cause may pass: a restart
// tries again), or from `poison_attempts` on, set it aside in failed/ so intake goes on.
enum class AfterFailure { keep_and_stop, set_aside };
[[nodiscard]] AfterFailure after_failure(int failures, int poison_attempts) noexcept;

std::string_view to_string(AfterIngest step) noexcept;
std::string_view to_string(AfterMove step) noexcept;
std::string_view to_string(AfterFailure step) noexcept;

}  // namespace labwatch::daemon
