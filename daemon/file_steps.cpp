// SPDX-License-Identifier: Apache-2.0
// The service's per-file decisions (see file_steps.hpp).
#include "daemon/file_steps.hpp"

namespace labwatch::daemon {

AfterIngest after_ingest(IngestEnd end) noexcept {
  switch (end) {
    case IngestEnd::accepted:
    case IngestEnd::already_known:
      return AfterIngest::to_processed;
    case IngestEnd::partial:
    case IngestEnd::refused:
      return AfterIngest::to_failed;
    case IngestEnd::changed:
      return AfterIngest::settle_again;
  }
  return AfterIngest::to_failed;
}

AfterMove after_move(MoveEnd end, AfterIngest destination, bool regular_file) noexcept {
  switch (end) {
    case MoveEnd::moved:
      return destination == AfterIngest::to_failed ? AfterMove::report_and_sync : AfterMove::report;
    case MoveEnd::replaced:
      return AfterMove::settle_again;
    case MoveEnd::gone:
      return AfterMove::forget;
    case MoveEnd::cannot_move:
      return regular_file ? AfterMove::stop : AfterMove::leave;
  }
  return AfterMove::stop;
}

AfterFailure after_failure(int failures, int poison_attempts) noexcept {
  return failures < poison_attempts ? AfterFailure::keep_and_stop : AfterFailure::set_aside;
}

std::string_view to_string(AfterIngest step) noexcept {
  switch (step) {
    case AfterIngest::to_processed:
      return "to_processed";
    case AfterIngest::to_failed:
      return "to_failed";
    case AfterIngest::settle_again:
      return "settle_again";
  }
  return "?";
}

std::string_view to_string(AfterMove step) noexcept {
  switch (step) {
    case AfterMove::report:
      return "report";
    case AfterMove::report_and_sync:
      return "report_and_sync";
    case AfterMove::settle_again:
      return "settle_again";
    case AfterMove::forget:
      return "forget";
    case AfterMove::leave:
      return "leave";
    case AfterMove::stop:
      return "stop";
  }
  return "?";
}

std::string_view to_string(AfterFailure step) noexcept {
  switch (step) {
    case AfterFailure::keep_and_stop:
      return "keep_and_stop";
    case AfterFailure::set_aside:
      return "set_aside";
  }
  return "?";
}

}  // namespace labwatch::daemon
