// SPDX-License-Identifier: Apache-2.0
// Time-zone name validation over the system tz database (Howard Hinnant's date/tz).
#pragma once

#include <string_view>

namespace labwatch::clinical {

// True when `name` is an IANA zone known to the system tz database ("Europe/Berlin").
bool is_valid_timezone(std::string_view name) noexcept;

}  // namespace labwatch::clinical
