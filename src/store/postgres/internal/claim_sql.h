// File: store/postgres/internal/claim_sql.h
//
// The statements of a claim that runs its attempts as it takes them
// (PostgresStore::ClaimRunningInstantly). They live here, not beside the
// store's other statements, because bench/claim_client.cc sends the same
// text from a bare libpq client, to weigh what a sked node adds to its own
// SQL.
#pragma once

#include "store/postgres/internal/task_columns.h"

namespace sked::store::postgres_internal {

// TaskClaim with run_instantly, in one transaction: lock the due rows of the
// queues without limits (as the `c` of the store's kClaimSql) and read only
// their dispatch fields (core::TaskClaimParams::run_instantly), let the
// caller run what it can at once, then write every row in one statement.
// kClaimWriteAlikeSql when every attempt ran and ended alike (a batch of
// no-ops): the store builds what it returns from the locked rows, and reads
// no whole row at all. Otherwise kClaimWriteSql: p.state NULL claims the task
// as kClaimSql does; a final p.state records that outcome instead; it returns
// every row whole, as it leaves it, for the tasks to launch. An outcome's line
// is the only history line of its attempt, kept on the row (line_*, migration
// 0012; kEventListSql reads it). The two statements share the protocol's
// implicit transaction (Connection::ExecPair): no BEGIN or COMMIT round trip.
// Reading only the dispatch fields: two nodes drained 13-16 % more no-ops
// than with every column (bench/README.md, ninth pass).
inline constexpr char kClaimLockSql[] =
    "SELECT " SKED_PG_DISPATCH_COLUMNS " FROM tasks"
    " WHERE state = 'scheduled' AND deleted_at IS NULL"
    " AND run_at <= $1::timestamptz AND runner = ANY($2::text[])"
    " AND queue NOT IN (SELECT name FROM queues"
    "  WHERE max_running IS NOT NULL OR max_per_second IS NOT NULL)"
    " ORDER BY run_at, id LIMIT $3::int"
    " FOR UPDATE SKIP LOCKED";
inline constexpr char kClaimWriteSql[] =
    "WITH p AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[],"
    "  $5::text[], $6::text[], $7::text[], $8::int8[])"
    "  AS p(id, state, exit_code, output, error, node, message, at_us)),"
    " u AS (UPDATE tasks t SET"
    "  state = coalesce(p.state, CASE WHEN t.runner = ANY($9::text[])"
    "   THEN 'provisioning' ELSE 'running' END),"
    "  attempt = t.attempt + 1, started_at = $10::timestamptz, handle = NULL,"
    "  lease_owner = CASE WHEN p.state IS NULL THEN $11::text END,"
    "  lease_expires_at = CASE WHEN p.state IS NULL THEN $12::timestamptz END,"
    "  finished_at = CASE WHEN p.state IS NULL THEN t.finished_at"
    "   ELSE timestamptz 'epoch' + p.at_us * interval '1 microsecond' END,"
    "  result_exit_code = CASE WHEN p.state IS NULL THEN t.result_exit_code ELSE p.exit_code END,"
    "  result_output = CASE WHEN p.state IS NULL THEN t.result_output ELSE p.output END,"
    "  error = CASE WHEN p.state IS NULL THEN t.error ELSE p.error END,"
    "  line_seq = CASE WHEN p.state IS NULL THEN t.line_seq"
    "   ELSE nextval('task_events_seq_seq') END,"
    "  line_node = CASE WHEN p.state IS NULL THEN t.line_node ELSE p.node END,"
    "  line_message = CASE WHEN p.state IS NULL THEN t.line_message ELSE p.message END"
    "  FROM p WHERE t.id = p.id"
    "  RETURNING t.*, p.state IS NULL AS claimed_only),"
    " e AS (INSERT INTO task_events (task_id, at, state, attempt, node, instance_id, message)"
    "  SELECT id, $10::timestamptz, state, attempt, $11::text, instance_id, 'claimed'"
    "  FROM u WHERE claimed_only)"
    " SELECT " SKED_PG_TASK_COLUMNS " FROM u ORDER BY run_at, id";
// kClaimWriteSql when every locked row was run and ended alike (the same
// state, exit code, error, node and line; a batch of no-ops): what the rows
// share is one parameter each, only the id, the time and the output are
// arrays, and nothing is claimed without ending. The same rows come out as
// kClaimWriteSql would leave them, for about 1 us less of the database's
// time per job (no outcome arrays to parse and join, no CASE per column, no
// CTEs; bench/README.md, ninth pass). Rows affected: one per task.
#define SKED_PG_CLAIM_WRITE_ALIKE                                                        \
  "UPDATE tasks t SET state = $4, attempt = t.attempt + 1, started_at = $9::timestamptz,"  \
  " handle = NULL, lease_owner = NULL, lease_expires_at = NULL,"                          \
  " finished_at = timestamptz 'epoch' + p.at_us * interval '1 microsecond',"              \
  " result_exit_code = $5::int, result_output = p.output, error = $6,"                    \
  " line_seq = nextval('task_events_seq_seq'), line_node = $7, line_message = $8"         \
  " FROM unnest($1::uuid[], $2::int8[], $3::text[]) AS p(id, at_us, output)"              \
  " WHERE t.id = p.id"
inline constexpr char kClaimWriteAlikeSql[] = SKED_PG_CLAIM_WRITE_ALIKE;
// TaskNextRunAt's question, the runners' text[] in parameter `runners`:
// shared by the store's kNextRunAtSql and kClaimWriteAlikeNextSql, which must
// answer it alike.
#define SKED_PG_NEXT_RUN_AT(runners)                                         \
  "SELECT " SKED_PG_US("run_at") " FROM tasks WHERE state = 'scheduled'"    \
  " AND deleted_at IS NULL AND runner = ANY(" runners "::text[])"
// kClaimWriteAlikeSql for a claim that took fewer tasks than it could
// (core::TaskClaimParams::next_run_at), which also answers the engine's next
// question, TaskNextRunAt, in the same round trip: the run_at of the first
// task still scheduled once this claim commits ($10: the runners). The
// statement's snapshot still sees the rows it writes as scheduled, hence the
// ids left out. One row: the rows written, then that run_at (NULL: none).
// At a steady rate of due tasks, each claim is one of these and takes one
// task: one round trip in three of a node's per job (bench/README.md, tenth
// pass).
inline constexpr char kClaimWriteAlikeNextSql[] =
    "WITH w AS (" SKED_PG_CLAIM_WRITE_ALIKE " RETURNING 1)"
    " SELECT (SELECT count(*) FROM w), (" SKED_PG_NEXT_RUN_AT("$10")
    "  AND id <> ALL($1::uuid[]) ORDER BY run_at LIMIT 1)";

}  // namespace sked::store::postgres_internal
