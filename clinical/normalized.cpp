// SPDX-License-Identifier: Apache-2.0
// Names of result statuses.
#include "clinical/normalized.hpp"

namespace labwatch::clinical {

std::string_view to_string(ResultStatus s) noexcept {
  switch (s) {
    case ResultStatus::final:
      return "final";
    case ResultStatus::corrected:
      return "corrected";
    case ResultStatus::preliminary:
      return "preliminary";
    case ResultStatus::cancelled:
      return "cancelled";
  }
  return "final";
}

}  // namespace labwatch::clinical
