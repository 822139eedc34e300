// SPDX-License-Identifier: Apache-2.0
// FileReader: the reading half of the pipeline: one claimed file sniffed, hashed, parsed and
// normalized into reports and refusals in file order, handed to the storing half in batches.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "clinical/normalized.hpp"
#include "config/config.hpp"
#include "ingest/claimed_file.hpp"
#include "ingest/digest.hpp"
#include "ingest/handoff.hpp"
#include "parsers/lab_report.hpp"

namespace labwatch::daemon {

// One thing a file holds, in file order: a report to store, or a refusal (a message that does not
// parse, a report that does not normalize, a CSV row, or the file as a whole).
using FileItem = std::variant<clinical::NormalizedReport, parsers::Refusal>;
using FileBatch = std::vector<FileItem>;

// Thrown inside the reader when the storing side has stopped: reading on would be wasted.
struct ReadCancelled {};

// Where a reader puts its items, gathered into batches of kItems: handed to the storing thread, or,
// for a small file that is not worth a thread, stored right away on the reading one.
class BatchSink {
 public:
  // A batch is passed on at kItems items (about 1,300 results) or at kWeight, counting a report as
  // one plus its results and refusals. At most kDepth batches exist, and the reader waits while
  // the batches out weigh kDepth * kWeight or more: the items in flight stay at a few megabytes,
  // and a single huge report (a 16 MiB message) is stored before the next one is handed over.
  static constexpr std::size_t kItems = 128;
  static constexpr std::size_t kWeight = 2048;
  static constexpr std::size_t kDepth = 4;
  static constexpr std::size_t kBudget = kDepth * kWeight;

  // Publishes each batch to `handoff`, for the storing thread.
  explicit BatchSink(Handoff<FileBatch>& handoff) : handoff_(&handoff) {}
  // Calls `store` with each batch, on this thread.
  explicit BatchSink(std::function<void(FileBatch&)> store) : store_(std::move(store)) {}

  // Adds one item; passes the batch on when it is full. Throws ReadCancelled after a cancel.
  void add(FileItem item);
  // Passes on the batch being filled, even an empty one: the storing side calls its progress
  // callback after every batch, so a long stretch without items still shows the file moving.
  void flush();

 private:
  void start_batch();

  Handoff<FileBatch>* handoff_ = nullptr;
  std::function<void(FileBatch&)> store_;
  std::optional<FileBatch> batch_;
  std::size_t weight_ = 0;  // of batch_
};

class FileReader {
 public:
  // `config` (sources, CSV vocabulary, catalogue) must outlive the reader.
  explicit FileReader(const config::Config& config) : config_(config) {}

  // Reads all of `file` (dropped as `name`) into `out`, every byte through `file_hash`: HL7 v2 in
  // 1 MiB chunks, a flush after each; a CSV export whole (at most parsers::kMaxCsvBytes). A file of
  // neither format, an empty one or a CSV too large is one refusal. Throws std::system_error on an
  // I/O error and ReadCancelled when the storing side stopped. Runs on the reader thread; `buffer`
  // is its reusable chunk buffer.
  void read(const ClaimedFile& file, const std::string& name, Sha256& file_hash,
            std::string& buffer, BatchSink& out) const;

 private:
  void hash_whole(const ClaimedFile& file, Sha256& file_hash, std::string& buffer,
                  BatchSink& out) const;
  void read_hl7(const ClaimedFile& file, const std::string& name, Sha256& file_hash,
                std::string& buffer, BatchSink& out) const;
  void read_csv(const ClaimedFile& file, const std::string& name, Sha256& file_hash,
                std::string& buffer, BatchSink& out) const;
  void normalize(const parsers::LabReport& report, std::string digest, const std::string& name,
                 BatchSink& out) const;

  const config::Config& config_;
};

}  // namespace labwatch::daemon
