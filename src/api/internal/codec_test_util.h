// File: api/internal/codec_test_util.h
//
// Test-only helpers for the api codec tests: JSON from text and assertions on
// the InvalidArgument messages the codecs return.
//
// Thread safety: free functions without shared state.
#pragma once

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sked::api::testing {

inline boost::json::value J(std::string_view text) { return boost::json::parse(text); }

// Passes when `r` failed with InvalidArgument and exactly `message`.
template <typename T>
::testing::AssertionResult IsInvalid(const core::StatusOr<T>& r, std::string_view message) {
  if (r.ok()) return ::testing::AssertionFailure() << "OK, want INVALID_ARGUMENT: " << message;
  const core::Status s = r.status();
  if (s.code() != core::StatusCode::kInvalidArgument || s.message() != message) {
    return ::testing::AssertionFailure()
           << "got " << s.ToString() << "\n want INVALID_ARGUMENT: " << message;
  }
  return ::testing::AssertionSuccess();
}

// Passes when `r` is OK; prints the status otherwise.
template <typename T>
::testing::AssertionResult IsOk(const core::StatusOr<T>& r) {
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.status().ToString();
}

}  // namespace sked::api::testing
