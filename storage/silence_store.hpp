// SPDX-License-Identifier: Apache-2.0
// Silences in SQLite: the Store's silence calls (storage/store.hpp), on one connection.
#pragma once

#include <SQLiteCpp/Database.h>

#include <cstdint>
#include <vector>

#include "storage/store.hpp"

namespace labwatch::storage {

// SilenceBook::add_silence and expire_silence, ResultQueries::silences, on `db`; each one
// transaction.
std::int64_t add_silence(SQLite::Database& db, const NewSilence& silence);
std::vector<SilenceRow> list_silences(SQLite::Database& db);
bool expire_silence(SQLite::Database& db, std::int64_t silence_id, clinical::UnixSeconds now);

}  // namespace labwatch::storage
