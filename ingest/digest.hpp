// SPDX-License-Identifier: Apache-2.0
// SHA-256 (OpenSSL EVP, already in the process through libcurl) as lower-case hex.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace labwatch::daemon {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&&) = delete;
  Sha256& operator=(Sha256&&) = delete;

  void update(std::string_view bytes);
  // The hex digest; the object can then be reused from scratch.
  std::string finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One-shot digest of `bytes` as hex.
std::string sha256_hex(std::string_view bytes);

}  // namespace labwatch::daemon
