// File: store/postgres/internal/batch_fence.h
//
// The fence of the batch updates by id (lease renewal, TaskFinishMany): the
// task row is still a live attempt. Apart so that a test can ask PostgreSQL
// how it estimates it.
#pragma once

// A batch update must be driven from the batch: one primary-key probe per
// row, or one hash join. The fence decides whether the planner can see it
// so. Written as plain conditions on state and deleted_at it implied partial
// indexes' predicates, and on a freshly filled table the planner scanned
// every running task (or every task) and, for each, the whole batch. Written
// as opaque expressions (`state || ''`, `deleted_at::text`), each got the
// default selectivity of an equality, 0.5 %, and between autovacuum's first
// VACUUM of a filled table and its ANALYZE the planner believed one task of
// 100 000 passed it: it scanned tasks once and, for that one row, the batch,
// and ran the batch 3 000 times, for 3 000 rows (0.8-3 s a statement, a
// drain at a third of its speed; auto_explain in bench/README.md's fifth
// pass). As one CASE it is a boolean expression without statistics, which
// the planner takes to pass half the rows: it implies no partial index, and
// no plan that repeats the batch for each task can look cheapest.
#define SKED_PG_LIVE_STATE_FENCE                                                        \
  "CASE WHEN t.state IN ('provisioning', 'running') AND t.deleted_at IS NULL THEN true" \
  " ELSE false END"
