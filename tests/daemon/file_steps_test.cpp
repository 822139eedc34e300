// SPDX-License-Identifier: Apache-2.0
// Tests of the service's per-file decisions: where a file goes after its ingest, what follows its
// move, and when a file that keeps failing is set aside.
#include "daemon/file_steps.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <tuple>

using labwatch::daemon::after_failure;
using labwatch::daemon::after_ingest;
using labwatch::daemon::after_move;
using labwatch::daemon::AfterFailure;
using labwatch::daemon::AfterIngest;
using labwatch::daemon::AfterMove;
using labwatch::daemon::IngestEnd;
using labwatch::daemon::MoveEnd;

TEST_CASE("after_ingest sends whole files to processed/, refused ones to failed/",
          "[daemon][file_steps]") {
  const auto [end, expected] = GENERATE(table<IngestEnd, AfterIngest>({
      {IngestEnd::accepted, AfterIngest::to_processed},
      {IngestEnd::already_known, AfterIngest::to_processed},
      {IngestEnd::partial, AfterIngest::to_failed},  // refusals are not lost in processed/
      {IngestEnd::refused, AfterIngest::to_failed},
      {IngestEnd::changed, AfterIngest::settle_again},  // nothing stored: read it again later
  }));
  INFO("end " << static_cast<int>(end));
  CHECK(to_string(after_ingest(end)) == to_string(expected));
}

TEST_CASE("after_move reports, reads again, leaves or stops by how the move went",
          "[daemon][file_steps]") {
  const auto [end, destination, regular, expected] =
      GENERATE(table<MoveEnd, AfterIngest, bool, AfterMove>({
          {MoveEnd::moved, AfterIngest::to_processed, true, AfterMove::report},
          // refused: synced at once, else a crash reads it again as known and it goes to
          // processed/
          {MoveEnd::moved, AfterIngest::to_failed, true, AfterMove::report_and_sync},
          {MoveEnd::moved, AfterIngest::to_failed, false, AfterMove::report_and_sync},
          {MoveEnd::replaced, AfterIngest::to_processed, true, AfterMove::settle_again},
          {MoveEnd::replaced, AfterIngest::to_failed, true, AfterMove::settle_again},
          {MoveEnd::gone, AfterIngest::to_processed, true, AfterMove::forget},
          {MoveEnd::gone, AfterIngest::to_failed, false, AfterMove::forget},
          // stored but stuck in the inbox: stop rather than pile files up
          {MoveEnd::cannot_move, AfterIngest::to_processed, true, AfterMove::stop},
          {MoveEnd::cannot_move, AfterIngest::to_failed, true, AfterMove::stop},
          // a FIFO or symlink that cannot be renamed: left where it is
          {MoveEnd::cannot_move, AfterIngest::to_failed, false, AfterMove::leave},
      }));
  INFO("end " << static_cast<int>(end) << ", to " << to_string(destination) << ", regular "
              << regular);
  CHECK(to_string(after_move(end, destination, regular)) == to_string(expected));
}

TEST_CASE("after_failure keeps a failing file until its third failure, then sets it aside",
          "[daemon][file_steps]") {
  const auto [failures, expected] = GENERATE(table<int, AfterFailure>({
      {0, AfterFailure::keep_and_stop},  // the failure could not be recorded
      {1, AfterFailure::keep_and_stop},
      {2, AfterFailure::keep_and_stop},
      {3, AfterFailure::set_aside},
      {7, AfterFailure::set_aside},
  }));
  INFO("failures " << failures);
  CHECK(to_string(after_failure(failures, 3)) == to_string(expected));
}
