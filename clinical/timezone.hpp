// SPDX-License-Identifier: Apache-2.0
// Time-zone name validation over the system tz database (Howard Hinnant's date/tz).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace labwatch::clinical {

// True when `name` is an IANA zone known to the system tz database ("Europe/Berlin").
bool is_valid_timezone(std::string_view name) noexcept;

// `t` as a reader in zone `name` sees it: "2024-09-21 14:15 CEST". An empty name is the machine's
// zone; a name the tz database does not know (or no tz database) gives UTC, said as "UTC".
std::string local_time_text(std::int64_t t, std::string_view name);

}  // namespace labwatch::clinical
