// SPDX-License-Identifier: Apache-2.0
// Tests of Handoff: order across threads, the bound on batches alive, cancel and a reader's error.
#include "ingest/handoff.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using labwatch::daemon::Handoff;
using Batch = std::vector<int>;
using namespace std::chrono_literals;

}  // namespace

TEST_CASE("Handoff passes every batch from the reader thread in the order published",
          "[daemon][handoff]") {
  Handoff<Batch> handoff(3, 100);
  constexpr int kBatches = 2000;
  std::thread reader([&handoff] {
    for (int i = 0; i < kBatches; ++i) {
      std::optional<Batch> batch = handoff.acquire();
      REQUIRE(batch);
      batch->clear();
      batch->push_back(i);
      batch->push_back(-i);
      handoff.publish(std::move(*batch), 1);
    }
    handoff.close();
  });
  std::vector<int> seen;
  while (std::optional<Batch> batch = handoff.next()) {
    REQUIRE(batch->size() == 2);
    CHECK(batch->at(1) == -batch->at(0));
    seen.push_back(batch->at(0));
    handoff.give_back(std::move(*batch));
  }
  reader.join();
  REQUIRE(seen.size() == kBatches);
  for (int i = 0; i < kBatches; ++i) {
    CHECK(seen[static_cast<std::size_t>(i)] == i);
  }
}

TEST_CASE("Handoff keeps the reader waiting once depth batches are out, and reuses them",
          "[daemon][handoff]") {
  Handoff<Batch> handoff(2, 100);
  std::optional<Batch> first = handoff.acquire();
  std::optional<Batch> second = handoff.acquire();
  REQUIRE(first);
  REQUIRE(second);
  first->assign({1, 2, 3});
  handoff.publish(std::move(*first), 1);
  handoff.publish(std::move(*second), 1);

  std::future<std::optional<Batch>> third =
      std::async(std::launch::async, [&handoff] { return handoff.acquire(); });
  CHECK(third.wait_for(100ms) == std::future_status::timeout);  // two out, none back

  std::optional<Batch> taken = handoff.next();
  REQUIRE(taken);
  CHECK(*taken == Batch{1, 2, 3});
  handoff.give_back(std::move(*taken));
  REQUIRE(third.wait_for(10s) == std::future_status::ready);
  const std::optional<Batch> reused = third.get();
  REQUIRE(reused);
  CHECK(*reused == Batch{1, 2, 3});  // the batch given back, as the writer left it
}

TEST_CASE("Handoff keeps the reader waiting while the batches out weigh the budget",
          "[daemon][handoff]") {
  // One heavy batch (a huge report) is stored before the next is handed over, although more
  // batches would be allowed by count.
  Handoff<Batch> handoff(4, 100);
  std::optional<Batch> light = handoff.acquire();
  REQUIRE(light);
  handoff.publish(std::move(*light), 60);
  std::optional<Batch> heavy = handoff.acquire();  // 60 out: under the budget
  REQUIRE(heavy);
  handoff.publish(std::move(*heavy), 500);

  std::future<std::optional<Batch>> next =
      std::async(std::launch::async, [&handoff] { return handoff.acquire(); });
  CHECK(next.wait_for(100ms) == std::future_status::timeout);  // 560 out
  std::optional<Batch> first = handoff.next();
  REQUIRE(first);
  handoff.give_back(std::move(*first));
  CHECK(next.wait_for(100ms) == std::future_status::timeout);  // 500 out: still over
  std::optional<Batch> second = handoff.next();
  REQUIRE(second);
  handoff.give_back(std::move(*second));
  REQUIRE(next.wait_for(10s) == std::future_status::ready);  // nothing out
  CHECK(next.get().has_value());
}

TEST_CASE("Handoff::cancel wakes a waiting reader and drops what it publishes after",
          "[daemon][handoff]") {
  Handoff<Batch> handoff(1, 100);
  std::optional<Batch> only = handoff.acquire();
  REQUIRE(only);
  std::future<std::optional<Batch>> waiting =
      std::async(std::launch::async, [&handoff] { return handoff.acquire(); });
  CHECK(waiting.wait_for(100ms) == std::future_status::timeout);
  handoff.cancel();
  REQUIRE(waiting.wait_for(10s) == std::future_status::ready);
  CHECK_FALSE(waiting.get().has_value());
  CHECK_FALSE(handoff.acquire().has_value());

  handoff.publish(Batch{7}, 1);
  handoff.close();
  CHECK_FALSE(handoff.next().has_value());
}

TEST_CASE("Handoff::next throws the reader's error after the batches published before it",
          "[daemon][handoff]") {
  Handoff<Batch> handoff(4, 100);
  handoff.publish(Batch{1}, 1);
  handoff.publish(Batch{2}, 1);
  handoff.close(std::make_exception_ptr(std::runtime_error("pread: Input/output error")));

  std::optional<Batch> a = handoff.next();
  std::optional<Batch> b = handoff.next();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a == Batch{1});
  CHECK(*b == Batch{2});
  CHECK_THROWS_WITH(handoff.next(), "pread: Input/output error");
  CHECK_FALSE(handoff.next().has_value());  // thrown once; then simply the end
}
