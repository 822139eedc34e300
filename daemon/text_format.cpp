// SPDX-License-Identifier: Apache-2.0
// Text formatting shared by the CLI, reports and mail.
#include "daemon/text_format.hpp"

#include <date/date.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>

namespace labwatch::daemon {

std::string iso_utc(clinical::UnixSeconds t) {
  const date::sys_seconds tp{std::chrono::seconds(t)};
  return date::format("%Y-%m-%dT%H:%M:%SZ", tp);
}

std::string iso_date(clinical::UnixSeconds t) {
  const date::sys_seconds tp{std::chrono::seconds(t)};
  return date::format("%Y-%m-%d", tp);
}

std::string format_number(double v) {
  if (!std::isfinite(v)) {
    return "";
  }
  std::array<char, 64> buf{};
  const auto [end, ec] =
      std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, 6);
  if (ec != std::errc()) {
    return "";
  }
  std::string out(buf.data(), end);
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') {
      out.pop_back();
    }
    if (out.back() == '.') {
      out.pop_back();
    }
  }
  if (out == "-0") {
    out = "0";
  }
  return out;
}

std::string format_number(const std::optional<double>& v) {
  return v ? format_number(*v) : std::string();
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    return std::string(text);
  }
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') {
      out += '"';
    }
    out += c;
  }
  out += '"';
  return out;
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
          out += kHex[static_cast<unsigned char>(c) & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace labwatch::daemon
