// SPDX-License-Identifier: Apache-2.0
// Handoff: batches passed in order from one reader thread to one writer thread, with at most
// `depth` batches alive and a bounded weight of them out at once, each handed back to be reused.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace labwatch::daemon {

// The pipeline reads, parses and normalizes a file on a reader thread while the calling thread
// stores what came before: SQLite has one writer, and this takes everything else off its thread.
// Memory stays bounded whatever the file's size: the reader waits for a batch to come back once
// `depth` of them are out, or once the batches published and not yet given back weigh `budget` or
// more (a weight is what the reader says a batch holds, e.g. its results: one huge report makes one
// heavy batch, and the next waits until it has been stored). Used batches return to the reader,
// which empties them, so what a batch holds is freed on the thread that allocated it.
template <typename Batch>
class Handoff {
 public:
  Handoff(std::size_t depth, std::size_t budget)
      : depth_(depth == 0 ? 1 : depth), budget_(budget == 0 ? 1 : budget) {}

  // Reader: a batch to fill: one given back (as the writer left it: the reader clears it), else a
  // new one while fewer than `depth` exist. Blocks until one is free and the weight out is under
  // the budget; nullopt once the writer has cancelled.
  std::optional<Batch> acquire() {
    std::unique_lock lock(mutex_);
    reader_wake_.wait(lock, [this] {
      return cancelled_ || ((!spare_.empty() || created_ < depth_) && weight_out_ < budget_);
    });
    if (cancelled_) {
      return std::nullopt;
    }
    if (!spare_.empty()) {
      std::optional<Batch> batch(std::move(spare_.back()));
      spare_.pop_back();
      return batch;
    }
    ++created_;
    return Batch{};
  }

  // Reader: passes a filled batch of this weight on, after those published before it. Dropped
  // after cancel().
  void publish(Batch batch, std::size_t weight) {
    {
      const std::lock_guard lock(mutex_);
      if (cancelled_ || closed_) {
        return;
      }
      full_.push_back(Published{std::move(batch), weight});
      weight_out_ += weight;
    }
    writer_wake_.notify_one();
  }

  // Reader: nothing more follows. A reader that failed passes its exception, which next() throws
  // once the batches published before it were taken.
  void close(std::exception_ptr error = nullptr) noexcept {
    {
      const std::lock_guard lock(mutex_);
      closed_ = true;
      error_ = std::move(error);
    }
    writer_wake_.notify_one();
  }

  // Writer: the next batch in order; blocks until one is published. nullopt at the end (the reader
  // closed and every batch was taken); throws the reader's exception instead when it failed.
  std::optional<Batch> next() {
    std::unique_lock lock(mutex_);
    writer_wake_.wait(lock, [this] { return !full_.empty() || closed_; });
    if (!full_.empty()) {
      std::optional<Batch> batch(std::move(full_.front().batch));
      taken_.push_back(full_.front().weight);
      full_.pop_front();
      return batch;
    }
    if (error_) {
      std::rethrow_exception(std::exchange(error_, nullptr));
    }
    return std::nullopt;
  }

  // Writer: a batch it is done with, for the reader to reuse; batches go back in the order taken.
  void give_back(Batch batch) {
    {
      const std::lock_guard lock(mutex_);
      spare_.push_back(std::move(batch));
      if (!taken_.empty()) {
        weight_out_ -= taken_.front();
        taken_.pop_front();
      }
    }
    reader_wake_.notify_one();
  }

  // Writer: stops the reader (the writer failed, or needs nothing more): acquire() returns nullopt
  // from now on, and what is published is dropped.
  void cancel() noexcept {
    {
      const std::lock_guard lock(mutex_);
      cancelled_ = true;
    }
    reader_wake_.notify_one();
  }

 private:
  struct Published {
    Batch batch;
    std::size_t weight = 0;
  };

  const std::size_t depth_;
  const std::size_t budget_;
  std::mutex mutex_;
  std::condition_variable reader_wake_;  // a batch came back, or the writer cancelled
  std::condition_variable writer_wake_;  // a batch was published, or the reader closed
  std::deque<Published> full_;           // published, not yet taken
  std::deque<std::size_t> taken_;        // the weights of batches taken, not yet given back
  std::vector<Batch> spare_;             // given back, not yet reused
  std::size_t created_ = 0;
  std::size_t weight_out_ = 0;  // published and not yet given back
  bool closed_ = false;
  bool cancelled_ = false;
  std::exception_ptr error_;
};

}  // namespace labwatch::daemon
