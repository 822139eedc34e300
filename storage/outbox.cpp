// SPDX-License-Identifier: Apache-2.0
// The mail outbox model: who is told about a report.
#include "storage/outbox.hpp"

#include <algorithm>

namespace labwatch::storage {

// Why both: the documented promise is "ordered by one of their provider ids OR coming from one of
// their facilities"; a provider match must not hide the facility's practitioners.
std::vector<Recipient> route(const Routing& routing, std::string_view provider_id,
                             std::string_view facility) {
  std::vector<Recipient> out;
  const auto add = [&out](const std::vector<Recipient>& recipients) {
    for (const Recipient& recipient : recipients) {
      const bool listed = std::any_of(
          out.begin(), out.end(), [&](const Recipient& r) { return r.email == recipient.email; });
      if (!recipient.email.empty() && !listed) {
        out.push_back(recipient);
      }
    }
  };
  if (const auto provider = routing.by_provider.find(provider_id);
      !provider_id.empty() && provider != routing.by_provider.end()) {
    add(provider->second);
  }
  if (const auto found = routing.by_facility.find(facility); found != routing.by_facility.end()) {
    add(found->second);
  }
  if (out.empty()) {
    add(routing.fallback);
  }
  return out;
}

}  // namespace labwatch::storage
