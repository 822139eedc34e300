// SPDX-License-Identifier: Apache-2.0
// load_config: the XML config file into a validated Config, or an error naming the element and why.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "parsers/expected.hpp"

namespace labwatch::config {

struct ConfigError {
  std::string path;     // the config file
  int line = 0;         // 1-based line of the offending element (0 when unknown)
  std::string message;  // what is wrong and where, e.g. "<source facility=\"QDX\">: unknown
                        // timezone 'Mars/Base'"
  [[nodiscard]] std::string to_string() const;
};

// The built-in defaults: catalogue, targets and trend rules of analytes.csv, relative paths, no
// sources.
Config default_config();

// Parses config XML. Relative paths, given or the defaults of <paths>, resolve against `base_dir`
// (kept relative when it is empty). Validates everything (timezones, rules, units, e-mail
// addresses, SMTP URL and its TLS policy) so a loaded config is usable.
parsers::Expected<Config, ConfigError> parse_config(std::string_view xml, const std::string& path,
                                                    const std::string& base_dir);

// The largest config file read; a real one is a few KiB.
constexpr std::size_t kMaxConfigBytes = std::size_t{1} << 20;

// Reads and parses a config file. Errors: unreadable file, not a regular file (a FIFO, a device),
// larger than kMaxConfigBytes, XML syntax (with line), invalid values.
parsers::Expected<Config, ConfigError> load_config(const std::string& path);

// Which source a file comes from: the first whose globs match the file name, else the first whose
// facility equals `facility` (an HL7 MSH-4). nullptr when none matches.
// Whether a database name is a URL (a scheme, then "://": "postgresql://..."), kept as written,
// rather than a file path, resolved beside the config. "db/x://y" is a path.
bool names_a_url(std::string_view database) noexcept;

const Source* match_source(const Config& config, std::string_view file_name,
                           std::string_view facility = {});

// The IANA zone of a file's naive times: its source's timezone, else <intake default-timezone>
// (also for a file that matches no source, `source` nullptr). Empty when neither is set.
std::string_view timezone_for(const Config& config, const Source* source) noexcept;

}  // namespace labwatch::config
