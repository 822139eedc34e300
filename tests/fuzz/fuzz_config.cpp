// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: parse_config on arbitrary bytes; a config it accepts must be usable as loaded.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config_loader.hpp"

namespace {

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  const auto loaded = labwatch::config::parse_config(xml, "/fuzz/labwatch.xml", "/fuzz");
  if (!loaded) {
    // Every refusal says what is wrong, and names a line of the input when it names one.
    const labwatch::config::ConfigError& e = loaded.error();
    check(!e.message.empty());
    check(e.line >= 0);
    static_cast<void>(e.to_string());
    return 0;
  }
  const labwatch::config::Config& config = loaded.value();
  // Relative paths were resolved against the config's directory; a database URL is kept.
  for (const std::string* path :
       {&config.paths.inbox, &config.paths.processed, &config.paths.failed}) {
    check(!path->empty() && path->front() == '/');
  }
  check(labwatch::config::names_a_url(config.paths.database) ||
        (!config.paths.database.empty() && config.paths.database.front() == '/'));
  check(config.intake.max_file_bytes > 0);
  // Source matching works on any name, including the facility's own.
  for (const auto& source : config.sources) {
    check(!source.facility.empty());
    static_cast<void>(labwatch::config::match_source(config, source.facility, source.facility));
  }
  static_cast<void>(labwatch::config::match_source(config, "a_qdx_01.hl7"));
  return 0;
}
