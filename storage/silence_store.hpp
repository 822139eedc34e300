// SPDX-License-Identifier: Apache-2.0
// Silences in SQLite: the Store's silence calls (storage/store.hpp), on one connection.
#pragma once

#include <cstdint>
#include <vector>

#include "storage/sql.hpp"
#include "storage/store.hpp"

namespace labwatch::storage {

// SilenceBook::add_silence and expire_silence, ResultQueries::silences, on `db`; each one
// transaction.
std::int64_t add_silence(sql::Database& db, const NewSilence& silence);
std::vector<SilenceRow> list_silences(sql::Database& db);
bool expire_silence(sql::Database& db, std::int64_t silence_id, clinical::UnixSeconds now);

}  // namespace labwatch::storage
