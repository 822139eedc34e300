// SPDX-License-Identifier: Apache-2.0
// Time-zone name validation over the system tz database.
#include "clinical/timezone.hpp"

#include <date/tz.h>

#include <exception>

namespace labwatch::clinical {

bool is_valid_timezone(std::string_view name) noexcept {
  if (name.empty()) {
    return false;
  }
  try {
    return date::locate_zone(name) != nullptr;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace labwatch::clinical
