#!/usr/bin/env python3
"""Replays a sked drain in SQL, to weigh schema changes without sked in the loop.

usage: python3 bench/replay_drain.py [--upto N] [--analyze] [--runs R] [--n N] [--shape S]
                                    [--sessions K]

Starts a throwaway PostgreSQL (scripts/pg-throwaway.sh), applies sked's PostgreSQL migrations
0001..N (default: all) to a fresh schema, fills it with N due no-op tasks and their "created"
events, then drains them in one session with a procedure shaped like sked's statements, 256
tasks a batch. --shape claim-finish (the drain up to the sixth pass, and still that of tasks a
runner launches): the claim (kClaimSql) and the batch finish (kFinishManySql), one commit each.
--shape in-claim (default; a no-op since the sixth pass): the rows locked (kClaimLockSql), then
the outcome written in the same transaction with its history line on the row (kClaimWriteSql;
needs migration 0012); --shape in-claim-event: the same with the line inserted into task_events,
as before 0012; --shape queue-table: a design weighed in the eighth pass (SHAPES below). It
prints the seconds the drain took and the share of HOT updates. --sessions K drains from K
sessions at once, as K claimers would. Only the database works here, on one core per session, so the figure moves
with the schema alone; bench/README.md cites the comparisons it made: --upto 6 against 7 (the
foreign key of task_events), 7 --analyze against 8 --analyze (the claim taking the list index on
an analysed backlog), 8 against 9 (uuid ids), claim-finish against in-claim, one session against
two.
"""
import argparse
import os
import re
import subprocess
import sys
import time

from run import ROOT, Postgres

MIGRATIONS = os.path.join(ROOT, "src", "store", "postgres", "migrations")

FILL = """
INSERT INTO tasks (id, type, runner, queue, run_at, state, max_attempts, timeout_s, created_at)
SELECT CAST((lpad(to_hex(g), 12, '0') || '7000' || substr(md5(g::text), 1, 16))::uuid AS {idtype}),
       'noop', 'builtin', 'default', now() - interval '1 min' + g * interval '1 microsecond',
       'scheduled', 1, 3600, now()
FROM generate_series(1, {n}) g;
INSERT INTO task_events (task_id, at, state, attempt, message)
SELECT id, created_at, 'scheduled', 0, 'created' FROM tasks;
"""

DRAIN = """
CREATE PROCEDURE drain() LANGUAGE plpgsql AS $$
DECLARE ids {idtype}[]; n int := 0;
BEGIN
LOOP
  WITH c AS (SELECT id FROM tasks WHERE state = 'scheduled' AND deleted_at IS NULL
             AND run_at <= now() AND runner = ANY(ARRAY['builtin'])
             ORDER BY run_at, id LIMIT 256 FOR UPDATE SKIP LOCKED),
  u AS (UPDATE tasks t SET state = 'running', attempt = t.attempt + 1, lease_owner = 'n1',
        lease_expires_at = now() + interval '30 s', started_at = now(), handle = NULL
        FROM c WHERE t.id = c.id RETURNING t.*),
  e AS (INSERT INTO task_events (task_id, at, state, attempt, node, instance_id, message)
        SELECT id, now(), state, attempt, 'n1', instance_id, 'claimed' FROM u)
  SELECT array_agg(id) INTO ids FROM u;
  EXIT WHEN ids IS NULL;
  n := n + cardinality(ids);
  COMMIT;
  WITH p AS (SELECT unnest(ids) AS id),
  u AS (UPDATE tasks t SET state = 'succeeded', finished_at = now(), result_exit_code = 0,
        result_output = '', error = NULL, lease_owner = NULL, lease_expires_at = NULL
        FROM p WHERE t.id = p.id AND t.attempt = 1
        AND t.state || '' IN ('provisioning', 'running') AND t.deleted_at::text IS NULL
        RETURNING t.id, t.state, t.attempt, t.instance_id, t.finished_at)
  INSERT INTO task_events (task_id, at, state, attempt, node, instance_id, message)
  SELECT id, finished_at, state, attempt, 'n1', instance_id, 'succeeded' FROM u;
  COMMIT;
END LOOP;
RAISE NOTICE 'drained %', n;
END $$;
"""


DRAIN_IN_CLAIM = """
CREATE PROCEDURE drain() LANGUAGE plpgsql AS $$
DECLARE ids {idtype}[]; n int := 0;
BEGIN
LOOP
  SELECT array_agg(id) INTO ids FROM (SELECT id FROM tasks WHERE state = 'scheduled'
    AND deleted_at IS NULL AND run_at <= now() AND runner = ANY(ARRAY['builtin'])
    ORDER BY run_at, id LIMIT 256 FOR UPDATE SKIP LOCKED) c;
  EXIT WHEN ids IS NULL;
  n := n + cardinality(ids);
  {write}
  COMMIT;
END LOOP;
RAISE NOTICE 'drained %', n;
END $$;
"""

# The outcome's history line: on the task's row (migration 0012 on), or inserted into
# task_events (the sixth pass).
WRITE_LINE_ON_ROW = """UPDATE tasks t SET state = 'succeeded', attempt = t.attempt + 1,
        started_at = now(), finished_at = now(), result_exit_code = 0, result_output = '',
        handle = NULL, line_seq = nextval('task_events_seq_seq'), line_node = 'n1',
        line_message = 'succeeded'
        FROM unnest(ids) AS p(id) WHERE t.id = p.id;"""
WRITE_LINE_AS_EVENT = """WITH p AS (SELECT unnest(ids) AS id),
  u AS (UPDATE tasks t SET state = 'succeeded', attempt = t.attempt + 1, started_at = now(),
        finished_at = now(), result_exit_code = 0, result_output = '', handle = NULL
        FROM p WHERE t.id = p.id
        RETURNING t.id, t.state, t.attempt, t.instance_id, t.finished_at)
  INSERT INTO task_events (task_id, at, state, attempt, node, instance_id, message)
  SELECT id, finished_at, state, attempt, 'n1', instance_id, 'succeeded' FROM u;"""

# --shape queue-table: a design weighed in the eighth pass and not taken. The due tasks are also
# rows of their own table, which the claim locks and the outcome deletes, and no index on tasks
# names state (the claim, ended-badly and active indexes are dropped), so that the outcome's
# update of the task can be HOT (fillfactor 50 leaves it room): no index entries at all.
QUEUE_TABLE_BEFORE_FILL = "ALTER TABLE tasks SET (fillfactor = 50);"
QUEUE_TABLE_AFTER_FILL = """
DROP INDEX tasks_claim_idx; DROP INDEX tasks_ended_badly_idx; DROP INDEX tasks_active_idx;
CREATE TABLE task_queue (id {idtype} PRIMARY KEY, run_at timestamptz NOT NULL, runner text NOT NULL);
CREATE INDEX task_queue_run_idx ON task_queue (run_at, id);
INSERT INTO task_queue SELECT id, run_at, runner FROM tasks;
ANALYZE task_queue; ANALYZE tasks;
"""
DRAIN_QUEUE_TABLE = """
CREATE PROCEDURE drain() LANGUAGE plpgsql AS $$
DECLARE ids {idtype}[]; n int := 0;
BEGIN
LOOP
  SELECT array_agg(id) INTO ids FROM (SELECT q.id AS id, t.type FROM task_queue q
    JOIN tasks t ON t.id = q.id WHERE q.run_at <= now() AND q.runner = ANY(ARRAY['builtin'])
    ORDER BY q.run_at, q.id LIMIT 256 FOR UPDATE OF q SKIP LOCKED) c;
  EXIT WHEN ids IS NULL;
  n := n + cardinality(ids);
  DELETE FROM task_queue WHERE id = ANY(ids);
  """ + WRITE_LINE_ON_ROW + """
  COMMIT;
END LOOP;
RAISE NOTICE 'drained %', n;
END $$;
"""

SHAPES = {"claim-finish": DRAIN,
          "in-claim": DRAIN_IN_CLAIM.replace("{write}", WRITE_LINE_ON_ROW),
          "in-claim-event": DRAIN_IN_CLAIM.replace("{write}", WRITE_LINE_AS_EVENT),
          "queue-table": DRAIN_QUEUE_TABLE}


def psql(dsn, sql, schema):
    return subprocess.run(["psql", dsn, "-v", "ON_ERROR_STOP=1", "-Atq"],
                          input=f"SET search_path = {schema};\n{sql}", text=True,
                          capture_output=True, check=True).stdout.strip()


def migrations(upto):
    files = sorted(f for f in os.listdir(MIGRATIONS) if re.match(r"\d{4}_.*\.sql$", f))
    return [os.path.join(MIGRATIONS, f) for f in files if upto is None or int(f[:4]) <= upto]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upto", type=int, help="apply migrations 0001..UPTO (default: all)")
    ap.add_argument("--analyze", action="store_true", help="ANALYZE the filled table first")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="in-claim")
    ap.add_argument("--sessions", type=int, default=1,
                    help="drain from this many sessions at once (each claims with SKIP LOCKED)")
    args = ap.parse_args()

    pg = Postgres()  # the harness's throwaway cluster
    dsn = pg.dsn
    try:
        files = migrations(args.upto)
        print(f"replay: migrations {os.path.basename(files[0])} .. {os.path.basename(files[-1])}"
              f"{', analysed' if args.analyze else ''}; {args.n} tasks; {args.shape}", flush=True)
        for run in range(args.runs):
            schema = f"replay{run}"
            psql(dsn, f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};", "public")
            for f in files:
                psql(dsn, open(f).read(), schema)
            idtype = psql(dsn, "SELECT format_type(atttypid, NULL) FROM pg_attribute "
                          f"WHERE attrelid = '{schema}.tasks'::regclass AND attname = 'id'", schema)
            queue_table = args.shape == "queue-table"
            if queue_table:
                psql(dsn, QUEUE_TABLE_BEFORE_FILL, schema)
            psql(dsn, FILL.format(n=args.n, idtype=idtype) + SHAPES[args.shape].format(idtype=idtype),
                 schema)
            if queue_table:
                psql(dsn, QUEUE_TABLE_AFTER_FILL.format(idtype=idtype), schema)
            if args.analyze:
                psql(dsn, "ANALYZE tasks;", schema)
            t = time.time()
            sessions = [subprocess.Popen(["psql", dsn, "-v", "ON_ERROR_STOP=1", "-Atq"],
                                         stdin=subprocess.PIPE, text=True)
                        for _ in range(args.sessions)]
            for s in sessions:
                s.stdin.write(f"SET search_path = {schema};\nCALL drain();\n")
                s.stdin.close()
            if any(s.wait() != 0 for s in sessions):
                sys.exit("replay: a session failed")
            seconds = time.time() - t
            done = psql(dsn, "SELECT count(*) FROM tasks WHERE state = 'succeeded'", schema)
            if int(done) != args.n:
                sys.exit(f"replay: {done} of {args.n} tasks drained")
            # The statistics collector's view of how many updates were HOT (it reports late).
            hot = psql(dsn, "SELECT pg_sleep(0.7); SELECT n_tup_hot_upd * 100 / greatest(n_tup_upd, 1) "
                       "FROM pg_stat_user_tables WHERE relid = 'tasks'::regclass", schema)
            print(f"replay: run {run + 1}: {seconds:.2f} s ({hot} % of updates HOT)", flush=True)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
