// SPDX-License-Identifier: Apache-2.0
// The spellings of notice kinds.
#include "clinical/notice_kind.hpp"

#include <array>

namespace labwatch::clinical {

std::string_view to_string(NoticeKind kind) noexcept {
  switch (kind) {
    case NoticeKind::alert:
      return "alert";
    case NoticeKind::correction:
      return "correction";
    case NoticeKind::resolution:
      return "resolution";
    case NoticeKind::retraction:
      return "retraction";
  }
  return "alert";
}

std::optional<NoticeKind> parse_notice_kind(std::string_view text) noexcept {
  constexpr std::array kKinds = {NoticeKind::alert, NoticeKind::correction, NoticeKind::resolution,
                                 NoticeKind::retraction};
  for (const NoticeKind kind : kKinds) {
    if (text == to_string(kind)) {
      return kind;
    }
  }
  return std::nullopt;
}

}  // namespace labwatch::clinical
