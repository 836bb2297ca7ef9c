// File: api/list_query.h
//
// Decoding of the task-listing query strings (`GET /v1/tasks`, and the briefs'
// `GET /task`) into core::TaskListParams, and the opaque keyset cursor the
// listing hands out as `next_cursor`. Rules: docs/API_NOTES.md "Listing".
//
// Conventions:
// - A parameter given with an empty value (`since=`) or no value counts as not
//   given, so a form or client that sends every key still works.
// - `state`, `type` and `label` may repeat (their values add up); any other
//   parameter given twice is rejected.
// - Times are epoch seconds (digits only) or RFC 3339; a '+' of an offset that
//   the query decoding turned into a space is restored.
// - Errors are InvalidArgument "<parameter>: <reason>"; an unknown parameter is
//   "<name>: unknown parameter".
//
// Thread safety: free functions without shared state.
#pragma once

#include <boost/url/params_view.hpp>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/store.h"

namespace sked::api {

inline constexpr int kDefaultListLimit = 100;
inline constexpr int kMaxListLimit = 1000;

// `GET /v1/tasks`: state, type (comma lists of exact names), since, until,
// label=k:v (repeatable), queue, schedule_id, order (asc|desc), limit (1..1000,
// default 100), cursor. OK: the params. InvalidArgument for an unknown name in
// a list, a bad time, limit or order, a malformed cursor, an unknown or
// repeated parameter, or a value that is not valid UTF-8.
core::StatusOr<core::TaskListParams> ParseListQuery(const boost::urls::params_view& params);

// `GET /task?status=&state=&kind=&type=&since=&until=` of the original briefs:
// everything ParseListQuery accepts, plus `status` as an alias of `state` and
// `kind` of `type`, with loose values: names are case-insensitive; types ignore
// ' ', '_' and '-' ("Fizz Buzz" = fizzbuzz); states also accept pending/queued
// (scheduled), done/completed/success (succeeded), error (failed) and canceled.
core::StatusOr<core::TaskListParams> ParseLegacyTaskQuery(const boost::urls::params_view& params);

// `GET /v1/schedules`: limit (1..1000, default 100) and cursor (the previous
// page's next_cursor, a schedule id). InvalidArgument, with the same rules and
// messages as ParseListQuery, for anything else.
core::StatusOr<core::ScheduleListParams> ParseScheduleListQuery(
    const boost::urls::params_view& params);

// An opaque, URL-safe (base64url, unpadded) encoding of the cursor.
std::string EncodeCursor(const core::TaskListCursor& cursor);

// The inverse of EncodeCursor. OK: the cursor. InvalidArgument
// "cursor: malformed" for anything EncodeCursor cannot have produced.
core::StatusOr<core::TaskListCursor> DecodeCursor(std::string_view text);

}  // namespace sked::api
