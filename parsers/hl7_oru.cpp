// SPDX-License-Identifier: Apache-2.0
// to_lab_report: the ORU^R01 view of a parsed HL7 message (patient, orders, observations, notes).
#include <array>
#include <charconv>
#include <optional>
#include <string>
#include <utility>

#include "parsers/csv_parser.hpp"
#include "parsers/hl7_parser.hpp"
#include "parsers/text.hpp"

namespace labwatch::parsers {
namespace {

// Decodes views into owning strings through one reused scratch buffer.
class Decoder {
 public:
  std::string text(const Hl7Field& f) { return std::string(f.decode(scratch_)); }

  void append(std::string& out, const Hl7Field& f) { out.append(f.decode(scratch_)); }

  // A composite value written with the standard delimiters whatever the message used:
  // components joined by '^', subcomponents by '&', each part decoded.
  void append_composite(std::string& out, const Hl7Field& repetition) {
    std::array<Hl7Field, 16> components;
    const std::size_t nc = repetition.split(components);
    for (std::size_t i = 0; i < nc; ++i) {
      const Hl7Field c = i < components.size() ? components[i] : repetition.component(i + 1);
      if (i > 0) {
        out.push_back('^');
      }
      std::array<Hl7Field, 8> subs;
      const std::size_t ns = c.split(subs);
      for (std::size_t j = 0; j < ns; ++j) {
        if (j > 0) {
          out.push_back('&');
        }
        append(out, j < subs.size() ? subs[j] : c.subcomponent(j + 1));
      }
    }
  }

  // Every repetition of a field, joined by `separator`; composites as in append_composite, other
  // values decoded as sent.
  std::string repetitions(const Hl7Field& field, std::string_view separator, bool composite) {
    std::string out;
    const std::size_t n = field.repetition_count();
    for (std::size_t r = 1; r <= n; ++r) {
      if (r > 1) {
        out.append(separator);
      }
      if (composite) {
        append_composite(out, field.repetition(r));
      } else {
        append(out, field.repetition(r));
      }
    }
    return out;
  }

  // CWE/CE: the primary triplet (components 1-3) and the alternate one (4-6).
  Coded coded(const Hl7Field& field) {
    std::array<Hl7Field, 6> c;
    field.repetition(1).split(c);
    return Coded{text(c[0]), text(c[1]), text(c[2]), text(c[3]), text(c[4]), text(c[5])};
  }

 private:
  std::string scratch_;
};

// A TS/DTM value: the HL7 shape, else any date shape that read_csv_datetime knows
// ("2025-03-15T08:30:00-05:00" in OBR-7 from a sender that writes ISO). A date NN/NN/YYYY keeps
// its readings (DateTime::slashed): its <source date-order> is known only once the message's
// sender is. Empty when the text is empty or the HL7 null; marked unreadable when it holds
// anything else.
DateTime time_value(std::string_view raw) {
  raw = trim(raw);
  if (raw.empty() || raw == "\"\"") {
    return {};
  }
  if (std::optional<DateTime> t = parse_hl7_timestamp(raw)) {
    return *t;
  }
  if (std::optional<DateTime> t = read_datetime_in_any_order(raw)) {
    return *t;
  }
  DateTime unreadable;
  unreadable.unreadable = true;
  return unreadable;
}

// TS: the time is component 1.
DateTime timestamp(const Hl7Field& field) { return time_value(field.component(1).raw()); }

char status_char(const Hl7Field& field) {
  const std::string_view s = trim(field.component(1).raw());
  return s.empty() ? '\0' : s.front();
}

// XCN/XPN names as "FAMILY, GIVEN" (family: the surname subcomponent of component `family_at`).
std::string person_name(Decoder& dec, const Hl7Field& repetition, std::size_t family_at) {
  std::string name = dec.text(repetition.component(family_at).subcomponent(1));
  const std::string given = dec.text(repetition.component(family_at + 1));
  if (!name.empty() && !given.empty()) {
    name.append(", ");
  }
  name.append(given);
  return name;
}

bool is_text_type(std::string_view type) noexcept { return type == "TX" || type == "FT"; }

bool is_coded_type(std::string_view type) noexcept {
  return type == "CE" || type == "CWE" || type == "CNE" || type == "CF";
}

class OruReader {
 public:
  OruReader(const Hl7Message& message, const RawMessage& pos) : m_(message), pos_(pos) {}

  Expected<LabReport, ParseError> read() {
    if (m_.segment_count() == 0) {
      return unexpected(
          error_at(RefusalReason::missing_msh, -1, -1, 0, "the message was not parsed"));
    }
    const Hl7Segment msh = m_.segment(0);
    if (pos_.truncated) {
      const Hl7Segment last = m_.segment(m_.segment_count() - 1);
      return error(RefusalReason::truncated_message, last, static_cast<int>(last.field_count()),
                   m_.text().size(), "the input ends inside this message");
    }
    if (dec_.text(msh.field(9).component(1)) != "ORU") {
      return error(RefusalReason::not_oru, msh, 9, msh.field_offset(9),
                   "MSH-9 is not an ORU message");
    }
    if (m_.charset() == Hl7Charset::unsupported) {
      return error(RefusalReason::bad_encoding, msh, 18, msh.field_offset(18),
                   "MSH-18 names a multi-byte character set (JIS, GB 18030, KS X 1001, BIG-5, "
                   "UTF-16/32) that labwatch cannot read");
    }
    LabReport& r = report_;
    if (m_.charset() == Hl7Charset::unknown) {
      // A label of the sender's own is no reason to refuse results: the text is read as if MSH-18
      // were empty, and the admin hears of it.
      r.warnings.push_back(Warning{"unknown_charset",
                                   "MSH-18 names no character set of HL7 table 0211; text read "
                                   "as UTF-8 where valid, else as ISO 8859-1",
                                   where(msh, 18, msh.field_offset(18))});
    }
    r.format = SourceFormat::hl7;
    r.sending_application = dec_.text(msh.field(3).component(1));
    r.sending_facility = dec_.text(msh.field(4).component(1));
    r.message_time = timestamp(msh.field(7));
    dec_.append_composite(r.message_type, msh.field(9).repetition(1));
    r.control_id = dec_.text(msh.field(10).component(1));
    r.version = dec_.text(msh.field(12).component(1));
    r.where = where(msh, -1, 0);

    bool have_pid = false;
    for (std::size_t i = 1; i < m_.segment_count(); ++i) {
      const Hl7Segment seg = m_.segment(i);
      const std::string_view id = seg.id();
      if (id == "PID") {
        if (have_pid) {
          return error(RefusalReason::unrecognized_format, seg, -1, seg.offset(),
                       "a second PID: one patient per message is supported");
        }
        have_pid = true;
        read_pid(seg);
      } else if (id == "ORC") {
        orc_ = seg;
        order_ = std::nullopt;  // a new order group starts
      } else if (id == "OBR") {
        read_obr(seg);
      } else if (id == "OBX") {
        read_obx(seg);
      } else if (id == "NTE") {
        read_nte(seg);
      } else if (id == "SPM") {
        read_spm(seg);
      }
    }
    if (!have_pid) {
      ParseError e =
          error_at(RefusalReason::missing_segment, -1, -1, m_.text().size(), "no PID segment");
      return unexpected(std::move(e));
    }
    return std::move(report_);
  }

 private:
  void read_pid(const Hl7Segment& pid) {
    Patient& p = report_.patient;
    const Hl7Field ids = pid.field(3);
    for (std::size_t r = 1; r <= ids.repetition_count(); ++r) {
      const Hl7Field cx = ids.repetition(r);
      Identifier id;
      id.id = dec_.text(cx.component(1));
      if (id.id.empty()) {
        continue;
      }
      id.authority = dec_.text(cx.component(4).subcomponent(1));  // CX.4 is an HD: its namespace id
      id.type = dec_.text(cx.component(5));
      p.identifiers.push_back(std::move(id));
    }
    const Hl7Field name = pid.field(5).repetition(1);
    p.family = dec_.text(name.component(1).subcomponent(1));
    p.given = dec_.text(name.component(2));
    p.middle = dec_.text(name.component(3));
    p.birth_date = timestamp(pid.field(7));
    p.sex = dec_.text(pid.field(8).component(1));
  }

  void read_obr(const Hl7Segment& obr) {
    report_.orders.emplace_back();
    order_ = report_.orders.size() - 1;
    has_obx_ = false;
    Order& o = report_.orders.back();
    o.placer_order_number = dec_.text(obr.field(2).component(1));
    o.filler_order_number = dec_.text(obr.field(3).component(1));
    o.filler_authority = dec_.text(obr.field(3).component(2));
    o.service = dec_.coded(obr.field(4));
    o.collected_at = timestamp(obr.field(7));
    const Hl7Field provider = obr.field(16).repetition(1);
    o.ordering_provider_id = dec_.text(provider.component(1));
    o.ordering_provider_name = person_name(dec_, provider, 2);
    o.status_changed_at = timestamp(obr.field(22));
    o.result_status = status_char(obr.field(25));
    // OBR-29 parent (EIP): <placer assigned identifier (EI)>^<filler assigned identifier (EI)>;
    // the filler's entity identifier is the parent's OBR-3.
    o.parent_filler_id = dec_.text(obr.field(29).component(2).subcomponent(1));
    // ORC-2, ORC-3 and ORC-12 carry the same numbers and provider; some senders fill only those.
    if (orc_) {
      if (o.placer_order_number.empty()) {
        o.placer_order_number = dec_.text(orc_->field(2).component(1));
      }
      if (o.filler_order_number.empty()) {
        o.filler_order_number = dec_.text(orc_->field(3).component(1));
        o.filler_authority = dec_.text(orc_->field(3).component(2));
      }
      if (o.ordering_provider_id.empty() && o.ordering_provider_name.empty()) {
        const Hl7Field orc_provider = orc_->field(12).repetition(1);
        o.ordering_provider_id = dec_.text(orc_provider.component(1));
        o.ordering_provider_name = person_name(dec_, orc_provider, 2);
      }
      orc_ = std::nullopt;
    }
  }

  void read_obx(const Hl7Segment& obx) {
    if (!order_) {
      // An OBX outside any OBR group still is a result: it goes to an order with no details.
      report_.orders.emplace_back();
      order_ = report_.orders.size() - 1;
    }
    has_obx_ = true;
    Observation o;
    const std::string_view set_id = trim(obx.field(1).raw());
    int n = 0;
    const auto [end, ec] = std::from_chars(set_id.data(), set_id.data() + set_id.size(), n);
    o.set_id = ec == std::errc() && end == set_id.data() + set_id.size() ? n : 0;
    o.value_type = dec_.text(obx.field(2).component(1));
    o.code = dec_.coded(obx.field(3));
    read_value(obx.field(5), o);
    o.units = dec_.text(obx.field(6).component(1));
    o.reference_range = dec_.repetitions(obx.field(7), "~", true);
    o.abnormal_flags = dec_.repetitions(obx.field(8), "~", true);
    o.result_status = status_char(obx.field(11));
    o.observed_at = timestamp(obx.field(14));
    o.test_name = o.code.text;
    o.where = where(obx, 5, obx.field_offset(5));
    o.units_where = where(obx, 6, obx.field_offset(6));
    report_.orders[*order_].observations.push_back(std::move(o));
  }

  // OBX-5 by OBX-2. SN (structured numeric) is <comparator>^<num1>[^<separator/suffix>^<num2>]:
  // "<^0.3" is a comparator and 0.3, "^10^-^20" the range "10-20".
  void read_value(const Hl7Field& field, Observation& o) {
    const Hl7Delimiters& d = m_.delimiters();
    if (o.value_type == "SN" && field.raw().find(d.component) != std::string_view::npos) {
      const Hl7Field sn = field.repetition(1);
      o.comparator = trim(dec_.text(sn.component(1)));
      for (std::size_t c = 2; c <= 4; ++c) {
        o.value.append(trim(dec_.text(sn.component(c))));
      }
      return;
    }
    const bool text = is_text_type(o.value_type);
    o.value = dec_.repetitions(field, text ? "\n" : "~", is_coded_type(o.value_type));
  }

  // SPM (2.5+) follows the observations of its OBR group. SPM-17 is a DR whose first component
  // is the start of the collection: a TS in 2.5 (its time is then subcomponent 1), a DTM later.
  void read_spm(const Hl7Segment& spm) {
    if (!order_) {
      return;
    }
    const DateTime t = time_value(spm.field(17).repetition(1).component(1).subcomponent(1).raw());
    if (t.empty() && !t.unreadable) {
      return;
    }
    DateTime& kept = report_.orders[*order_].specimen_collected_at;
    if (kept.empty() && !kept.unreadable) {
      kept = t;
    } else if (kept != t) {
      // Two specimens of one order collected at different times: which result came from which
      // is not said, so neither time is taken.
      kept = DateTime{};
      kept.unreadable = true;
    }
  }

  // NTE-3 (FT, repeating) notes the OBR before any OBX, else the latest OBX. Notes before any
  // OBR (on the patient or the message) have no place in a LabReport.
  void read_nte(const Hl7Segment& nte) {
    if (!order_) {
      return;
    }
    std::string note = dec_.repetitions(nte.field(3), "\n", false);
    Order& o = report_.orders[*order_];
    if (has_obx_ && !o.observations.empty()) {
      o.observations.back().notes.push_back(std::move(note));
    } else {
      o.notes.push_back(std::move(note));
    }
  }

  SourcePos where(const Hl7Segment& seg, int field, std::size_t offset_in_message) const {
    SourcePos p;
    p.message = pos_.index;
    p.segment = seg.number();
    p.segment_id = std::string(seg.id());
    p.field = field;
    p.line = pos_.first_line + seg.line();
    p.offset = pos_.offset + offset_in_message;
    return p;
  }

  ParseError error_at(RefusalReason code, int segment, int field, std::size_t offset_in_message,
                      const char* detail) const {
    ParseError e;
    e.code = code;
    e.offset = pos_.offset + offset_in_message;
    e.message = pos_.index;
    e.line = pos_.first_line;  // the message's MSH, unless a segment is named (error())
    e.segment = segment;
    e.field = field;
    e.detail = detail;
    return e;
  }

  Unexpected<ParseError> error(RefusalReason code, const Hl7Segment& seg, int field,
                               std::size_t offset_in_message, const char* detail) const {
    ParseError e = error_at(code, seg.number(), field, offset_in_message, detail);
    e.line = pos_.first_line + seg.line();
    return unexpected(std::move(e));
  }

  const Hl7Message& m_;
  const RawMessage& pos_;
  Decoder dec_;
  LabReport report_;
  std::optional<Hl7Segment> orc_;     // an ORC not yet followed by its OBR
  std::optional<std::size_t> order_;  // index of the order that OBX and NTE attach to
  bool has_obx_ = false;              // the current order has an OBX (NTE attaches to it)
};

}  // namespace

Expected<LabReport, ParseError> to_lab_report(const Hl7Message& message, const RawMessage& pos) {
  return OruReader(message, pos).read();
}

}  // namespace labwatch::parsers
