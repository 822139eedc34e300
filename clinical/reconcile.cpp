// SPDX-License-Identifier: Apache-2.0
// Reconciliation decisions: person-name folding, the demographic match key, result version plans.
#include "clinical/reconcile.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <tuple>

namespace labwatch::clinical {

namespace {

// ---- UTF-8 -------------------------------------------------------------------------------------

constexpr char32_t kInvalid = 0xFFFFFFFF;

struct Decoded {
  char32_t code_point = kInvalid;  // kInvalid when the bytes are not a well-formed sequence
  std::size_t length = 1;          // bytes consumed (1 for an invalid byte)
};

// Decodes the UTF-8 sequence at text[at] (at < text.size()). Rejects overlong forms, surrogates
// and values above U+10FFFF, so that an invalid byte is passed through alone.
Decoded decode_utf8(std::string_view text, std::size_t at) noexcept {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  if (lead < 0x80) {
    return {lead, 1};
  }
  std::size_t length = 0;
  char32_t code_point = 0;
  char32_t minimum = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    code_point = lead & 0x1Fu;
    minimum = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    code_point = lead & 0x0Fu;
    minimum = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    code_point = lead & 0x07u;
    minimum = 0x10000;
  } else {
    return {};
  }
  if (text.size() - at < length) {
    return {};
  }
  for (std::size_t i = 1; i < length; ++i) {
    const unsigned char next = byte(at + i);
    if ((next & 0xC0u) != 0x80u) {
      return {};
    }
    code_point = (code_point << 6) | (next & 0x3Fu);
  }
  if (code_point < minimum || code_point > 0x10FFFF ||
      (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return {};
  }
  return {code_point, length};
}

// ---- Name folding ------------------------------------------------------------------------------

struct LatinFold {
  char32_t first;
  char32_t last;
  std::string_view ascii;
};

// Latin-1 Supplement letters, Latin Extended-A and the Romanian comma-below letters, upper and
// lower case, to their unaccented ASCII base (ligatures, thorn and ß to two letters).
constexpr auto kLatinFolds = std::to_array<LatinFold>({
    {0xC0, 0xC5, "a"},   {0xC6, 0xC6, "ae"},   {0xC7, 0xC7, "c"},   {0xC8, 0xCB, "e"},
    {0xCC, 0xCF, "i"},   {0xD0, 0xD0, "d"},    {0xD1, 0xD1, "n"},   {0xD2, 0xD6, "o"},
    {0xD8, 0xD8, "o"},   {0xD9, 0xDC, "u"},    {0xDD, 0xDD, "y"},   {0xDE, 0xDE, "th"},
    {0xDF, 0xDF, "ss"},  {0xE0, 0xE5, "a"},    {0xE6, 0xE6, "ae"},  {0xE7, 0xE7, "c"},
    {0xE8, 0xEB, "e"},   {0xEC, 0xEF, "i"},    {0xF0, 0xF0, "d"},   {0xF1, 0xF1, "n"},
    {0xF2, 0xF6, "o"},   {0xF8, 0xF8, "o"},    {0xF9, 0xFC, "u"},   {0xFD, 0xFD, "y"},
    {0xFE, 0xFE, "th"},  {0xFF, 0xFF, "y"},    {0x100, 0x105, "a"}, {0x106, 0x10D, "c"},
    {0x10E, 0x111, "d"}, {0x112, 0x11B, "e"},  {0x11C, 0x123, "g"}, {0x124, 0x127, "h"},
    {0x128, 0x131, "i"}, {0x132, 0x133, "ij"}, {0x134, 0x135, "j"}, {0x136, 0x138, "k"},
    {0x139, 0x142, "l"}, {0x143, 0x14B, "n"},  {0x14C, 0x151, "o"}, {0x152, 0x153, "oe"},
    {0x154, 0x159, "r"}, {0x15A, 0x161, "s"},  {0x162, 0x167, "t"}, {0x168, 0x173, "u"},
    {0x174, 0x175, "w"}, {0x176, 0x178, "y"},  {0x179, 0x17E, "z"}, {0x17F, 0x17F, "s"},
    {0x218, 0x219, "s"}, {0x21A, 0x21B, "t"},
});

std::string_view latin_base(char32_t c) noexcept {
  for (const LatinFold& fold : kLatinFolds) {
    if (c >= fold.first && c <= fold.last) {
      return fold.ascii;
    }
  }
  return {};
}

// What one code point contributes to a folded name.
enum class NameClass : std::uint8_t { keep, space, dash, drop, fold };

NameClass classify(char32_t c) noexcept {
  switch (c) {
    case U' ':
    case U'\t':
    case U'\n':
    case U'\r':
    case U'|':  // the separator of the match key, so that no name can imitate it
    case 0xA0:  // no-break space
      return NameClass::space;
    case U'-':
    case 0x2212:  // minus sign
      return NameClass::dash;
    case U'\'':
    case U'`':
    case U'.':
    case 0xB4:    // acute accent
    case 0x2BC:   // modifier letter apostrophe
    case 0x2018:  // left single quotation mark
    case 0x2019:  // right single quotation mark
      return NameClass::drop;
    default:
      break;
  }
  if (c < 0x80) {
    return NameClass::keep;
  }
  if (c >= 0x2010 && c <= 0x2015) {  // hyphen ... horizontal bar
    return NameClass::dash;
  }
  if (c >= 0x300 && c <= 0x36F) {  // combining diacritical marks (decomposed input: "u" U+0308)
    return NameClass::drop;
  }
  return latin_base(c).empty() ? NameClass::keep : NameClass::fold;
}

// ---- Version order -----------------------------------------------------------------------------

int status_rank(ResultStatus s) noexcept {
  switch (s) {
    case ResultStatus::preliminary:
      return 0;
    case ResultStatus::final:
      return 1;
    case ResultStatus::corrected:
      return 2;
    case ResultStatus::cancelled:
      return 3;
  }
  return 1;
}

bool same_value(double a, double b) noexcept {
  return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b));
}

// Where a version stands among the versions with a time of their own: message time, status rank,
// arrival (id). A version without a time takes the place of the latest one that arrived before it.
using TimedPlace = std::tuple<UnixSeconds, int, std::int64_t>;

struct Ordered {
  TimedPlace place;  // its own; for a version timed by arrival, the place it follows (see below)
  bool by_arrival = false;
  std::int64_t id = 0;  // the incoming version sorts after every stored one of equal time and rank
  bool cancelled = false;
  const StoredVersion* stored = nullptr;  // nullptr for the incoming version

  [[nodiscard]] auto sort_key() const noexcept { return std::tuple(place, by_arrival, id); }
};

}  // namespace

std::string fold_person_name(std::string_view name) {
  std::string folded;
  folded.reserve(name.size());
  bool pending_space = false;
  std::size_t at = 0;
  while (at < name.size()) {
    const Decoded d = decode_utf8(name, at);
    const std::string_view bytes = name.substr(at, d.length);
    at += d.length;
    const NameClass kind = d.code_point == kInvalid ? NameClass::keep : classify(d.code_point);
    if (kind == NameClass::space) {
      pending_space = !folded.empty();
      continue;
    }
    if (kind == NameClass::drop) {
      continue;
    }
    if (pending_space) {
      folded.push_back(' ');
      pending_space = false;
    }
    if (kind == NameClass::dash) {
      folded.push_back('-');
    } else if (kind == NameClass::fold) {
      folded.append(latin_base(d.code_point));
    } else if (bytes.size() == 1 && bytes[0] >= 'A' && bytes[0] <= 'Z') {
      folded.push_back(static_cast<char>(bytes[0] - 'A' + 'a'));
    } else {
      folded.append(bytes);
    }
  }
  return folded;
}

std::string_view first_given_name(std::string_view folded_given) noexcept {
  return folded_given.substr(0, folded_given.find(' '));
}

std::optional<std::string> person_match_key(const PersonIdentity& person) {
  if (person.birth_date.empty()) {
    return std::nullopt;
  }
  const std::string family = fold_person_name(person.family);
  const std::string given = fold_person_name(person.given);
  const std::string_view first = first_given_name(given);
  if (family.empty() || first.empty()) {
    return std::nullopt;
  }
  const char sex = person.sex == 'F' || person.sex == 'M' ? person.sex : 'U';
  std::string key;
  key.reserve(family.size() + first.size() + person.birth_date.size() + 4);
  key.append(family).append(1, '|').append(first).append(1, '|');
  key.append(person.birth_date).append(1, '|').append(1, sex);
  return key;
}

std::string_view to_string(ResultState state) noexcept {
  switch (state) {
    case ResultState::current:
      return "current";
    case ResultState::superseded:
      return "superseded";
    case ResultState::withdrawn:
      return "withdrawn";
    case ResultState::cancelled:
      return "cancelled";
  }
  return "current";
}

std::optional<ResultState> parse_result_state(std::string_view text) noexcept {
  for (const ResultState s : {ResultState::current, ResultState::superseded, ResultState::withdrawn,
                              ResultState::cancelled}) {
    if (text == to_string(s)) {
      return s;
    }
  }
  return std::nullopt;
}

std::optional<ResultStatus> parse_result_status(std::string_view text) noexcept {
  for (const ResultStatus s : {ResultStatus::final, ResultStatus::corrected,
                               ResultStatus::preliminary, ResultStatus::cancelled}) {
    if (text == to_string(s)) {
      return s;
    }
  }
  return std::nullopt;
}

bool VersionKey::same_group(const VersionKey& other) const noexcept {
  if (facility != other.facility || order_id != other.order_id || person_id != other.person_id) {
    return false;
  }
  return by_order() || collected_at == other.collected_at;
}

bool VersionKey::reuses_accession_of(const VersionKey& other) const noexcept {
  return by_order() && facility == other.facility && order_id == other.order_id &&
         person_id != other.person_id;
}

VersionKey version_key(std::string_view facility, const NormalizedResult& result,
                       std::int64_t person_id) noexcept {
  VersionKey key{facility, result.order_id, result.analyte, person_id};
  if (!key.by_order()) {
    key.collected_at = result.collected_at;
  }
  return key;
}

VersionPlan plan_version(std::span<const StoredVersion> existing, const IncomingVersion& incoming) {
  VersionPlan plan;
  const bool incoming_cancelled = incoming.status == ResultStatus::cancelled;
  if (existing.empty()) {  // the usual case: the first version of a result
    plan.state = incoming_cancelled ? ResultState::cancelled : ResultState::current;
    return plan;
  }
  for (const StoredVersion& v : existing) {
    if (v.status == incoming.status && v.comparator == incoming.comparator &&
        same_value(v.value, incoming.value) &&
        (!incoming.by_order || incoming.time_from_arrival || v.time_from_arrival ||
         v.message_time == incoming.message_time)) {
      plan.duplicate = true;
      return plan;
    }
  }

  // Why the whole history is re-derived instead of comparing with the current version only: an
  // older version may arrive after a newer one (files ingested out of order), and a cancellation
  // may fall between two versions. Deriving every state from the one total order and emitting
  // only the differences keeps the stored history identical whatever the arrival order.
  //
  // Why a version without a time of its own (MSH-7 and OBR-22 absent) is placed by arrival, not
  // by the clock of its ingest: that clock says nothing about the lab's times, and compared with
  // them it would beat every later message whose MSH-7 is earlier than the ingest (a later
  // deletion would not withdraw it). It follows every version that arrived before it, and a
  // version that arrives after it follows it unless its own time puts it before one of those
  // (an old version arriving late stays old). So the order stays total and, among versions with
  // times, independent of arrival; only what has no time is ordered by when it came.
  std::vector<Ordered> order;
  order.reserve(existing.size() + 1);
  for (const StoredVersion& v : existing) {
    order.push_back({{v.message_time, status_rank(v.status), v.id},
                     v.time_from_arrival,
                     v.id,
                     v.status == ResultStatus::cancelled,
                     &v});
  }
  constexpr std::int64_t kIncomingId = std::numeric_limits<std::int64_t>::max();
  order.push_back({{incoming.message_time, status_rank(incoming.status), kIncomingId},
                   incoming.time_from_arrival,
                   kIncomingId,
                   incoming_cancelled,
                   nullptr});
  // Only versions with a time of their own give places, so each is read before it could change.
  for (Ordered& entry : order) {
    if (!entry.by_arrival) {
      continue;
    }
    entry.place = {std::numeric_limits<UnixSeconds>::min(), 0, 0};
    for (const Ordered& earlier : order) {
      if (!earlier.by_arrival && earlier.id < entry.id) {
        entry.place = std::max(entry.place, earlier.place);
      }
    }
  }
  std::sort(order.begin(), order.end(),
            [](const Ordered& a, const Ordered& b) { return a.sort_key() < b.sort_key(); });

  for (std::size_t i = 0; i < order.size(); ++i) {
    const Ordered& entry = order[i];
    const Ordered* next = i + 1 < order.size() ? &order[i + 1] : nullptr;
    ResultState state = ResultState::current;
    if (entry.cancelled) {
      state = ResultState::cancelled;
    } else if (next != nullptr) {
      state = next->cancelled ? ResultState::withdrawn : ResultState::superseded;
    }
    // A cancellation keeps no successor; every other non-last version points at the next one.
    const bool has_successor = next != nullptr && !entry.cancelled;
    const bool successor_incoming = has_successor && next->stored == nullptr;
    std::optional<std::int64_t> successor;
    if (has_successor && !successor_incoming) {
      successor = next->stored->id;
    }

    if (entry.stored == nullptr) {
      plan.state = state;
      plan.superseded_by = successor;
      continue;
    }
    const StoredVersion& stored = *entry.stored;
    const bool successor_changed = successor_incoming || stored.superseded_by != successor;
    if (stored.state != state || successor_changed) {
      plan.changes.push_back({stored.id, stored.state, state, successor, successor_incoming});
    }
  }
  return plan;
}

std::optional<std::int64_t> plan_promotion(std::span<const StoredVersion> existing) noexcept {
  for (const StoredVersion& v : existing) {
    if (v.state == ResultState::current && v.status == ResultStatus::preliminary) {
      return v.id;
    }
  }
  return std::nullopt;
}

std::vector<StoredVersion> draw_versions(std::span<const DrawCandidate> candidates,
                                         const DrawFacts& incoming, std::size_t own_versions) {
  std::vector<StoredVersion> versions;
  const VersionKey& in = incoming.key;
  const bool by_parent = !incoming.parent_order_id.empty();
  if (own_versions > 0 || (!by_parent && incoming.status != ResultStatus::corrected)) {
    return versions;
  }
  for (const DrawCandidate& c : candidates) {
    const VersionKey& k = c.key;
    if (k.facility != in.facility || k.person_id != in.person_id || k.analyte != in.analyte ||
        k.order_id == in.order_id) {
      continue;
    }
    const bool match =
        by_parent ? k.order_id == incoming.parent_order_id : k.collected_at == in.collected_at;
    if (match) {
      versions.push_back(c.version);
    }
  }
  return versions;
}

StandInPlan plan_stand_in(bool incoming_stand_in, std::span<const DrawTotal> current) {
  StandInPlan plan;
  for (const DrawTotal& total : current) {
    if (incoming_stand_in && !total.stand_in()) {
      plan.store_as_fraction = true;
    } else if (!incoming_stand_in && total.stand_in()) {
      plan.replaced.push_back({total.id, total.fraction});
    }
  }
  if (plan.store_as_fraction) {
    plan.replaced.clear();
  }
  return plan;
}

namespace {
constexpr std::array<StandInPair, 1> kStandIns = {{{"vitamin_d3_25oh", "vitamin_d_25oh"}}};
}  // namespace

std::span<const StandInPair> stand_in_pairs() noexcept { return kStandIns; }

std::string_view stand_in_fraction(std::string_view total) noexcept {
  for (const StandInPair& pair : kStandIns) {
    if (pair.total == total) {
      return pair.fraction;
    }
  }
  return {};
}

}  // namespace labwatch::clinical
