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

std::string_view to_string(SkipReason reason) noexcept {
  switch (reason) {
    case SkipReason::pending:
      return "pending";
    case SkipReason::not_asked:
      return "not_asked";
    case SkipReason::order_detail:
      return "order_detail";
    case SkipReason::comment:
      return "comment";
    case SkipReason::not_performed:
      return "not_performed";
  }
  return "pending";
}

}  // namespace labwatch::clinical
