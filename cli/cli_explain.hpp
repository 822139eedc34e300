// SPDX-License-Identifier: Apache-2.0
// `labwatch explain FILE`: what an ingest of a file would do, shown from a dry run.
#pragma once

#include <string>

#include "config/config.hpp"
#include "ingest/pipeline.hpp"

namespace labwatch::daemon {

// What `explain` prints for one file read by Pipeline::explain_file: per message and line, the
// results an ingest would store (analyte, canonical value and unit, the lab's value and unit), the
// lines it would skip and why, its refusals as `ingest` words them, and the alerts it would raise
// (analyte, rule, tier). `json` selects one JSON object instead of text. Shows result values, as
// `export` does; never a patient's name or identifier.
std::string explain_output(const std::string& file, const FileExplanation& explanation,
                           const config::Config& config, bool json);

// True when an ingest of the file would exit 2: something would be refused now, or these bytes
// were refused (wholly or in part) when first ingested.
bool would_refuse(const FileExplanation& explanation) noexcept;

}  // namespace labwatch::daemon
