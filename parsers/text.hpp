// SPDX-License-Identifier: Apache-2.0
// Small text helpers every layer uses: blanks, digits, ASCII case, calendar years.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace labwatch::parsers {

// A space or a tab: what labs pad fields and cells with.
constexpr bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// `text` without leading and trailing spaces and tabs.
constexpr std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && is_blank(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_blank(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

// `text` with A-Z lowered (or a-z raised); every other byte, UTF-8 included, as it is.
std::string lower_ascii(std::string_view text);
std::string upper_ascii(std::string_view text);

// Gregorian leap year.
constexpr bool is_leap_year(int year) noexcept {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

// The days of `month` (1-12) in `year`.
constexpr int days_in_month(int year, int month) noexcept {
  constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap_year(year) ? 29 : kDays[static_cast<std::size_t>(month - 1)];
}

}  // namespace labwatch::parsers
