// File: tests/conformance/store_conformance.h
//
// The one conformance suite every core::Store backend must pass (STYLE.md
// section 8). It is a value-parameterised fixture: a backend adds one
// instantiation file that supplies a factory for a fresh, empty store per
// test, and runs every test here, e.g.
//
//   INSTANTIATE_TEST_SUITE_P(
//       Sqlite, StoreConformanceTest,
//       ::testing::Values(StoreConformanceParam{
//           .name = "memory",
//           .open = [] { return OpenSqliteStore({.path = ":memory:"}); }}),
//       StoreConformanceParamName);
//
// The tests cover every Store method and the transitions each performs:
// idempotency, atomic batches, listing with each filter and keyset
// pagination, claim order and concurrency, lease renewal, fencing of stale
// attempts, retry and rescue exhaustion, cancel, delete, history, counts,
// nodes, leader election and Ping. Times are fixed
// (tests/testing/task_factory.h's kTestEpoch); nothing sleeps.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "core/status.h"
#include "core/store.h"
#include "testing/task_factory.h"

namespace sked::testing {

// Returns a fresh, empty store; called once per test.
using StoreFactory =
    std::function<core::StatusOr<std::unique_ptr<core::Store>>()>;

struct StoreConformanceParam {
  // Suffix of the test names; letters, digits and '_' only.
  std::string name;
  StoreFactory open;
  // Optional: called after each test once the store is destroyed, to remove
  // what `open` created (a temp file, a schema).
  std::function<void()> cleanup;
};

// Test output names the backend instead of dumping the struct's bytes.
inline void PrintTo(const StoreConformanceParam& p, std::ostream* os) {
  *os << p.name;
}

// Thread safety: a gtest fixture; each test runs it on one thread, except
// where a test itself starts threads that share the store.
class StoreConformanceTest
    : public ::testing::TestWithParam<StoreConformanceParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  core::Store& store() { return *store_; }

  std::unique_ptr<core::Store> store_;
  TaskFactory factory_;
};

// Names instantiations by StoreConformanceParam::name.
std::string StoreConformanceParamName(
    const ::testing::TestParamInfo<StoreConformanceParam>& info);

}  // namespace sked::testing
