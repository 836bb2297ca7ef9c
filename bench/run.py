#!/usr/bin/env python3
"""The benchmark harness: sked beside graphile-worker and pg-boss, on one throwaway
PostgreSQL, in one run, written up as docs/benchmarks.md with PNG charts.

usage: python3 bench/run.py [--quick] [--only throughput,lateness,...] [--out FILE]
                            [--no-peers] [--drains R]

--quick runs every scenario with small N (the test suite's smoke run); the full run
is what docs/benchmarks.md holds. Everything is measured here, in this run: no figure
is typed by hand. See bench/README.md.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS_DIR = os.path.join(ROOT, "bench", "peers")
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


# --- PostgreSQL ---------------------------------------------------------------


class Postgres:
    """A throwaway cluster (scripts/pg-throwaway.sh) and psql against it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sked-bench-pg.", dir="/tmp")
        os.rmdir(self.dir)  # the script wants it absent or empty
        self.dsn = sh(["bash", os.path.join(ROOT, "scripts/pg-throwaway.sh"), "start", self.dir]).strip()
        self.port = int(re.search(r":(\d+)/", self.dsn).group(1))
        log("PostgreSQL at", self.dsn)

    def psql(self, sql):
        return sh(["psql", self.dsn, "-v", "ON_ERROR_STOP=1", "-Atqc", sql]).strip()

    def session(self):
        return PsqlSession(self.dsn)

    def version(self):
        return self.psql("SHOW server_version")

    def stop(self):
        subprocess.run(["bash", os.path.join(ROOT, "scripts/pg-throwaway.sh"), "stop", self.dir],
                       capture_output=True)


class PsqlSession:
    """One psql kept open, for polls during a measurement: a psql started per
    poll (Debian's is a Perl wrapper) and the backend it forks cost about 30 ms
    of CPU each, taken from the two cores the drain is measured on; the peers'
    harness polls through a connection it keeps, and so does this."""

    END = "__sked_bench_end__"

    def __init__(self, dsn):
        self.proc = subprocess.Popen(["psql", dsn, "-v", "ON_ERROR_STOP=1", "-Atq"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def query(self, sql):
        self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo " + self.END + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if line == "":
                sys.exit(f"bench: psql session ended (exit {self.proc.wait()}) on: {sql}")
            if line.rstrip("\n") == self.END:
                return "\n".join(lines).strip()
            lines.append(line.rstrip("\n"))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


# --- sked ---------------------------------------------------------------------


SKED_BINARY = os.path.join(ROOT, "build", "src", "app", "sked")


def sked_binary():
    if not os.path.exists(SKED_BINARY):
        sys.exit(f"bench: no sked binary at {SKED_BINARY}: build it first (bash scripts/build.sh)")
    return SKED_BINARY


class SkedNode:
    def __init__(self, db, name, concurrency, extra=(), wait=True):
        self.port = free_port()
        self.log_path = tempfile.mktemp(prefix=f"sked-bench-{name}.", suffix=".log")
        args = [sked_binary(), "serve", "--listen", f"127.0.0.1:{self.port}", "--db", db,
                "--node-id", name, "--concurrency", str(concurrency), "--log-level", "warn",
                "--http-handler-threads", "8", *extra]
        self.args = args
        self.proc = subprocess.Popen(args, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        if wait:
            self.wait_healthy()

    def wait_healthy(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"bench: sked exited at start; see {self.log_path}")
            try:
                urllib.request.urlopen(self.url("/healthz"), timeout=1).read()
                return
            except OSError:
                time.sleep(0.02)
        sys.exit("bench: sked did not become healthy")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def post(self, path, body):
        req = urllib.request.Request(self.url(path), data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=60) as r:
            return json.loads(r.read())

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return float("nan")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def create_batches(node, bodies, threads=4):
    """POST /v1/tasks:batch, 1000 a call, from a few threads; returns the tasks."""
    chunks = [bodies[i:i + 1000] for i in range(0, len(bodies), 1000)]
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        results = list(ex.map(lambda c: node.post("/v1/tasks:batch", {"tasks": c})["tasks"], chunks))
    return [t for r in results for t in r]


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


WORKER_CONCURRENCY = 256
# The drain's workers: attempts in flight per node. A no-op finishes in
# microseconds, so what this buys is fuller claim and outcome batches (up to
# the engine's claim batch per statement, 512): 256 -> 1 024 -> 4 096 gave
# about 20 500 -> 26 500 -> 27 700 jobs/s on one node in one session. The
# peers' equivalents are graphile-worker's local queue of 500 and pg-boss's
# batch of 1 000 (bench/peers/README.md).
DRAIN_CONCURRENCY = 4096


def drop_and_settle(pg, schema):
    """Drops a finished scenario's schema (as each peer's database is dropped)
    and writes out what it dirtied, so that neither autovacuum working through
    its dead rows nor a checkpoint of its pages loads the next measurement."""
    pg.psql(f"DROP SCHEMA {schema} CASCADE")
    pg.psql("CHECKPOINT")


def sked_ran_once(pg, schema, n):
    """Whether each of the n tasks succeeded in its first attempt and nothing else: one attempt
    per task in its history, with one outcome line and at most one claim line. A job sked ran
    inside its claim has only the outcome's, kept on the task's row (line_seq, migration 0012)
    instead of in task_events; the check counts both places."""
    tasks = int(pg.psql(f"SELECT count(*) FROM {schema}.tasks WHERE state = 'succeeded' AND attempt = 1"))
    attempts = pg.psql(
        f"SELECT count(*), count(*) FILTER (WHERE claims <= 1 AND outcomes = 1) FROM ("
        f"SELECT task_id, attempt, count(*) FILTER (WHERE message = 'claimed') AS claims, "
        f"count(*) FILTER (WHERE state IN ('succeeded', 'failed')) AS outcomes FROM ("
        f"SELECT task_id, attempt, state, message FROM {schema}.task_events WHERE attempt > 0 "
        f"UNION ALL SELECT id, attempt, state, line_message FROM {schema}.tasks "
        f"WHERE line_seq IS NOT NULL) h GROUP BY task_id, attempt) a").split("|")
    return tasks == n and int(attempts[0]) == n and int(attempts[1]) == n


def machine_busy_seconds():
    """CPU time the whole machine has spent working (user, nice, system, irq,
    softirq: not idle, I/O wait or time the hypervisor took), all cores."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = (
            int(x) for x in f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def enqueue_backlog(pg, n, schema):
    """The throughput scenario's backlog: n no-op tasks created through sked's API (an API-only
    node, POST /v1/tasks:batch) into `schema`, then analysed, as the peers' harness analyses
    theirs (bench/README.md)."""
    api = SkedNode(pg.dsn, "bench-api", 0, ["--db-schema", schema])
    t = time.time()
    create_batches(api, [{"type": "noop"} for _ in range(n)])
    log(f"sked: enqueued {n} in {time.time() - t:.1f}s")
    api.stop()
    pg.psql("ANALYZE")


def sked_throughput(pg, n, nodes, schema):
    db = pg.dsn
    enqueue_backlog(pg, n, schema)
    # The end time is the last finished_at, not the poll's, so the poll only
    # has to notice the end without loading the database it measures (the
    # peers' harness counts its workers' calls and asks the database once, at
    # the end). Whether anything is left to run walks the claim index, whose
    # head is all dead entries while the drain goes on: 7 ms of PostgreSQL's
    # time a poll, a few % of a drain's. The claims take the backlog in
    # (run_at, id) order, so while its last task is not finished the drain is
    # not either: that is one primary-key lookup.
    busy = (f"SELECT EXISTS (SELECT 1 FROM {schema}.tasks WHERE state = 'scheduled' "
            f"AND deleted_at IS NULL) OR EXISTS (SELECT 1 FROM {schema}.tasks "
            f"WHERE state IN ('provisioning', 'running'))")
    last = pg.psql(f"SELECT id FROM {schema}.tasks ORDER BY run_at DESC, id DESC LIMIT 1")
    last_open = (f"SELECT state NOT IN ('succeeded', 'failed', 'cancelled') "
                 f"FROM {schema}.tasks WHERE id = '{last}'")
    poll = pg.session()
    busy0 = machine_busy_seconds()
    spawned = time.time()
    # Started together, each claiming as soon as it is up: the peers' workers
    # too are all connected before they are told to go.
    workers = [SkedNode(db, f"bench-w{i}", DRAIN_CONCURRENCY, ["--db-schema", schema], wait=False)
               for i in range(nodes)]
    for w in workers:
        w.wait_healthy()
    cpu0 = sum(w.cpu_seconds() for w in workers)
    while poll.query(last_open) == "t" or poll.query(busy) == "t":
        time.sleep(0.02)
        if time.time() - spawned > 600:
            sys.exit("bench: sked throughput did not finish in 10 minutes")
    # The clock runs from the first claim, made by a node up and connected (the
    # peers' from their "go" to connected workers), to the last outcome; both
    # are times the nodes wrote, on this machine's clock.
    start, end = (float(x) for x in poll.query(
        f"SELECT extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at)) "
        f"FROM {schema}.tasks").split("|"))
    poll.close()
    seconds = end - start
    cpu = sum(w.cpu_seconds() for w in workers) - cpu0
    # Everything the machine did from the spawn to the end seen (the nodes'
    # start-up, the drain, the poll's tail): PostgreSQL, sked, the kernel.
    machine = machine_busy_seconds() - busy0
    for w in workers:
        w.stop()
    once = sked_ran_once(pg, schema, n)
    # A claim's tasks share its started_at.
    claim_calls = int(pg.psql(f"SELECT count(DISTINCT started_at) FROM {schema}.tasks"))
    in_claim = int(pg.psql(f"SELECT count(*) FROM {schema}.tasks WHERE line_seq IS NOT NULL"))
    drop_and_settle(pg, schema)
    return {"peer": "sked", "scenario": "throughput", "n": n, "workers": nodes, "seconds": seconds,
            "jobs_per_s": n / seconds, "ran_once": once, "startup_s": start - spawned,
            "claim_calls": claim_calls, "ran_in_claim": in_claim,
            "cpu_ms_per_job": cpu * 1000 / n, "machine_cpu_us_per_job": machine * 1e6 / n,
            "settings": {"concurrency": DRAIN_CONCURRENCY, "claim_batch": 512,
                         "claimers": "2, shared by the nodes that claim",
                         "db_pool": "HTTP handler threads + 4 = 12"}}


CLAIM_CLIENT = os.path.join(ROOT, "build", "bench", "sked-claim-client")


def claim_client_throughput(pg, client, n, statements, processes, schema):
    """The throughput scenario's backlog (enqueued through sked's API, analysed) drained with no
    sked node: `processes` bare libpq clients at once (bench/claim_client.cc) sending sked's own
    claim statements ("sked") or the least a claim that keeps each job's row could ask ("lean").
    What the database gives a claim with nothing in between (bench/README.md, ninth pass)."""
    enqueue_backlog(pg, n, schema)
    busy0 = machine_busy_seconds()
    t = time.time()
    procs = [subprocess.Popen([client, pg.dsn, schema, statements], stdout=subprocess.PIPE,
                              text=True) for _ in range(processes)]
    outs = [p.communicate()[0] for p in procs]
    seconds = time.time() - t
    machine_s = machine_busy_seconds() - busy0
    if any(p.returncode != 0 for p in procs):
        sys.exit(f"bench: a claim client failed on {schema}")
    jobs = sum(json.loads(o)["jobs"] for o in outs)
    done = int(pg.psql(f"SELECT count(*) FROM {schema}.tasks WHERE state = 'succeeded' "
                       f"AND attempt = 1"))
    drop_and_settle(pg, schema)
    return {"peer": f"claim-client ({statements})", "scenario": "claim_client", "n": n,
            "workers": processes, "seconds": seconds, "jobs_per_s": n / seconds,
            "machine_cpu_us_per_job": machine_s * 1e6 / n, "ran_once": jobs == n and done == n}


def sked_lateness(pg, n, spread_s, schema, scenario="lateness"):
    node = SkedNode(pg.dsn, "bench-lat", WORKER_CONCURRENCY, ["--db-schema", schema])
    # Every job is created before the first is due: a job inserted after its
    # run_at would count its own enqueue as lateness.
    base = time.time() + 2.0 + n / 4000.0
    bodies = [{"type": "noop", "run_at": rfc3339(base + spread_s * i / n)} for i in range(n)]
    create_batches(node, bodies, threads=2)
    lead = base - time.time()
    if lead < 0.5:
        log(f"sked {scenario}: enqueue ended only {lead:.2f}s before the first run_at")
    cpu0 = node.cpu_seconds()
    deadline = base + spread_s + 60
    # Nothing is asked of the database while jobs are due: a poll (a psql and
    # a backend forked, a scan of the table) would load the very CPU whose
    # lateness is measured, more as the table grows. Afterwards a cheap check
    # on the partial indexes.
    time.sleep(max(0.0, base + spread_s - time.time()))
    q = (f"SELECT EXISTS (SELECT 1 FROM {schema}.tasks WHERE state = 'scheduled' "
         f"AND deleted_at IS NULL) OR EXISTS (SELECT 1 FROM {schema}.tasks "
         f"WHERE state IN ('provisioning', 'running'))")
    while pg.psql(q) == "t":
        if time.time() > deadline:
            sys.exit("bench: sked lateness run did not finish")
        time.sleep(0.2)
    cpu = node.cpu_seconds() - cpu0
    rss = node.rss_mb()
    node.stop()
    rows = pg.psql(f"SELECT extract(epoch FROM started_at - run_at) * 1000 FROM {schema}.tasks").split()
    late = [float(x) for x in rows]
    once = sked_ran_once(pg, schema, n)
    drop_and_settle(pg, schema)
    return {"peer": "sked", "scenario": scenario, "n": n, "spread_s": spread_s,
            "p50_ms": percentile(late, 50), "p99_ms": percentile(late, 99), "max_ms": max(late),
            "min_ms": min(late), "ran_once": once, "cpu_ms_per_job": cpu * 1000 / n,
            "enqueue_lead_s": lead,
            "rss_mb": rss, "settings": {"concurrency": WORKER_CONCURRENCY}}


# --- Peers --------------------------------------------------------------------

PEERS = {"graphile-worker": "graphile.mjs", "pg-boss": "pgboss.mjs"}


def ensure_peers():
    if not os.path.isdir(os.path.join(PEERS_DIR, "node_modules")):
        log("installing the peers with npm ci")
        sh(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEERS_DIR)


def run_peer(peer, args, pg):
    db = f"peer_{re.sub(r'[^a-z]', '_', peer)}_{int(time.time() * 1000)}"
    pg.psql(f"CREATE DATABASE {db}")
    dsn = re.sub(r"/[^/]+$", "/" + db, pg.dsn)
    try:
        out = sh(["node", PEERS[peer], *args, "--dsn", dsn], cwd=PEERS_DIR, timeout=900)
        return json.loads(out.strip().splitlines()[-1])
    finally:
        pg.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        pg.psql("CHECKPOINT")  # as drop_and_settle does for sked


# --- wrk and pgbench ------------------------------------------------------------


def wrk(url, seconds, connections=32, script=None):
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = sh(cmd)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"req_per_s": rps, "p99_ms": float(p99.group(1)) * scale,
            "non_2xx": int(errors.group(1)) if errors else 0}


CREATE_LUA = """wrk.method = "POST"
wrk.body = '{"type": "noop", "run_at": "2100-01-01T00:00:00Z"}'
wrk.headers["Content-Type"] = "application/json"
"""


# GET of one task, a different task each request: each wrk thread walks the
# ids from its own offset, so concurrent reads are of distinct tasks (a batch
# of reads of one id would cost the store one row).
GET_MANY_LUA = """local ids = {{{ids}}}
local next_offset = 0
function setup(thread)
  thread:set("offset", next_offset)
  next_offset = next_offset + math.floor(#ids / 2)
end
local i = 0
function request()
  i = i + 1
  return wrk.format("GET", "/v1/tasks/" .. ids[((offset + i) % #ids) + 1])
end
"""


def wrk_get_many(node, ids, seconds, connections=32):
    """wrk GETs of one task, cycling over `ids` (not empty)."""
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write(GET_MANY_LUA.format(ids=",".join(f'"{i}"' for i in ids)))
    lua.close()
    try:
        return wrk(node.url("/v1/tasks/"), seconds, connections, script=lua.name)
    finally:
        os.unlink(lua.name)


def sked_api(db_label, db, seconds, extra, analyze=None):
    node = SkedNode(db, f"bench-api-{db_label}", WORKER_CONCURRENCY, extra)
    tasks = create_batches(node, [{"type": "noop"} for _ in range(2000)], threads=1)
    time.sleep(1.0)  # let them finish, so the list has succeeded tasks
    if analyze:
        analyze()  # fresh planner statistics, as autovacuum would soon have
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write(CREATE_LUA)
    lua.close()
    out = {
        "get": wrk_get_many(node, [t["id"] for t in tasks], seconds),
        "list": wrk(node.url("/v1/tasks?state=succeeded&type=noop&limit=20"), seconds),
        "create": wrk(node.url("/v1/tasks"), seconds, script=lua.name),
    }
    out["rss_mb"] = node.rss_mb()
    node.stop()
    os.unlink(lua.name)
    return {"peer": "sked", "scenario": "api", "db": db_label, **out}


# What a long-lived installation holds: ten types, mostly finished, run_at over
# 30 days. Written by SQL in one statement (the API would take an hour to
# create 10 M tasks and measures nothing here); sked has migrated the schema.
# The tasks go in with the label triggers (migration 0011) off, and their
# labels' index rows follow in one statement, the migration's own backfill:
# the same rows the triggers write, without 10 million trigger calls.
# synchronous_commit on: the throwaway cluster commits asynchronously, and a
# VACUUM right after an unflushed commit cannot set the rows' hint bits, so the
# measured reads would dirty (and, evicted, write) every page they touch: GET
# p99 3.4-12.9 ms from run to run, where autovacuum, coming later, would have
# left the table clean (bench/README.md, twelfth pass).
SCALE_FILL_SQL = """
SET synchronous_commit = on;
SET session_replication_role = replica;
INSERT INTO {schema}.tasks (id, type, runner, queue, run_at, state, attempt, max_attempts,
                            timeout_s, created_at, started_at, finished_at,
                            result_exit_code, result_output, labels)
SELECT md5(g::text)::uuid,
       (ARRAY['fizz','buzz','fizzbuzz','foo','bar','baz','noop'])[1 + g % 7],
       'builtin', 'default',
       timestamptz '2026-11-01' + (g * interval '30 days' / {n}),
       CASE WHEN g % 100 < 90 THEN 'succeeded' WHEN g % 100 < 95 THEN 'failed'
            WHEN g % 100 < 99 THEN 'cancelled' ELSE 'scheduled' END,
       1, 3, 3600,
       timestamptz '2026-11-01' + (g * interval '30 days' / {n}),
       timestamptz '2026-11-01' + (g * interval '30 days' / {n}),
       timestamptz '2026-11-01' + (g * interval '30 days' / {n}) + interval '3 s',
       0, 'Fizz ' || g, jsonb_build_object('team', 'team-' || (g % 50))
FROM generate_series(1, {n}) g;
INSERT INTO {schema}.task_labels (label_key, label_value, label_run_at, task_id)
SELECT kv.key, kv.value, t.run_at, t.id
FROM {schema}.tasks t, jsonb_each_text(t.labels) kv
WHERE t.deleted_at IS NULL AND t.labels <> '{{}}'::jsonb;
RESET session_replication_role;
"""


SCALE_LISTS = ("list_state_type", "list_window", "list_label", "list_window_page2")
SCALE_CONNECTIONS = 4


def sked_scale(pg, n, seconds, schema):
    """n tasks in the store: filtered lists and deep pages under wrk, and the node's RSS."""
    SkedNode(pg.dsn, "bench-scale-migrate", 0, ["--db-schema", schema]).stop()
    t = time.time()
    pg.psql(SCALE_FILL_SQL.format(schema=schema, n=n))
    pg.psql(f"VACUUM ANALYZE {schema}.tasks")
    pg.psql(f"VACUUM ANALYZE {schema}.task_labels")
    # The fill dirtied gigabytes of buffers; write them out now, or the
    # checkpoint and the kernel's write-back land in the first measurements
    # (a GET p99 of 98 ms in one run, 3 ms in the others).
    pg.psql("CHECKPOINT")
    os.sync()
    log(f"sked scale: {n} tasks written and analyzed in {time.time() - t:.0f}s")
    node = SkedNode(pg.dsn, "bench-scale", 0, ["--db-schema", schema])
    # 2 000 tasks spread over the whole table (a sample of about four times
    # as many pages' rows), read in turn.
    pct = min(100.0, 2000 * 100.0 * 4 / n)
    ids = pg.psql(f"SELECT id FROM {schema}.tasks TABLESAMPLE SYSTEM ({pct}) LIMIT 2000").split()
    if not ids:
        sys.exit("bench: scale: the sample of tasks to GET is empty")
    # Each sampled task read once before the clock starts: wrk reads the 2 000
    # in turn for 10 s, so its first pass (about 1.5 % of its requests) would
    # read them cold from disk and make the p99 a figure of the first pass
    # (3.4-28.6 ms from run to run; bench/README.md, twelfth pass).
    for task_id in ids:
        node.get(f"/v1/tasks/{task_id}")
    # The second page of a day in the middle of the history (keyset cursor).
    day = node.get("/v1/tasks?limit=50&since=2026-11-15T00:00:00Z&until=2026-11-16T00:00:00Z")
    # 4 connections: the p99 of a request, not of a queue 32 deep in front of
    # the node's 8 handler threads.
    c = SCALE_CONNECTIONS
    out = {
        "get": wrk_get_many(node, ids, seconds, c),
        "list_state_type": wrk(node.url("/v1/tasks?state=failed&type=fizz&limit=50"), seconds, c),
        "list_window": wrk(node.url("/v1/tasks?since=2026-11-15T00:00:00Z"
                                    "&until=2026-11-16T00:00:00Z&limit=50"), seconds, c),
        "list_label": wrk(node.url("/v1/tasks?label=team:team-7&state=succeeded&limit=50"),
                          seconds, c),
        "list_window_page2": wrk(node.url("/v1/tasks?since=2026-11-15T00:00:00Z"
                                          "&until=2026-11-16T00:00:00Z&limit=50&cursor="
                                          + urllib.parse.quote(day["next_cursor"])), seconds, c),
    }
    out["rss_mb"] = node.rss_mb()
    node.stop()
    pg.psql(f"DROP SCHEMA {schema} CASCADE")
    return {"peer": "sked", "scenario": "scale", "n": n, **out}


PGBENCH_SQL = """\\set aid random(1, 100000 * :scale)
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
"""


def pg_ceiling(pg, seconds):
    env = dict(os.environ, PGPASSWORD="")
    sh(["pgbench", "-i", "-q", "-s", "10", pg.dsn], env=env)
    script = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    script.write(PGBENCH_SQL)
    script.close()
    out = sh(["pgbench", "-n", "-c", "16", "-j", "2", "-T", str(seconds), "-f", script.name, pg.dsn],
             env=env)
    os.unlink(script.name)
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    return {"scenario": "pg_ceiling", "single_row_updates_per_s": tps,
            "settings": {"clients": 16, "threads": 2, "scale": 10,
                         "statement": "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid"}}


# --- Report -------------------------------------------------------------------


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 1048576, 1),
            "kernel": platform.release()}


def versions(pg):
    v = {"postgresql": pg.version(), "node": sh(["node", "--version"]).strip()}
    try:
        v["sked"] = sh(["git", "-C", ROOT, "describe", "--always", "--dirty"]).strip()
    except subprocess.CalledProcessError:
        v["sked"] = "unknown"
    lock = os.path.join(PEERS_DIR, "package-lock.json")
    if os.path.exists(lock):
        pkgs = json.load(open(lock)).get("packages", {})
        for name in PEERS:
            v[name] = pkgs.get(f"node_modules/{name}", {}).get("version", "?")
    return v


def chart(path, title, ylabel, rows):
    """A bar chart with gnuplot: rows are (label, value)."""
    if not shutil.which("gnuplot"):
        return None
    data = tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False)
    for label, value in rows:
        data.write(f'"{label}" {value}\n')
    data.close()
    script = f"""set terminal pngcairo size 720,360 font "sans,10"
set output "{path}"
set title "{title}"
set ylabel "{ylabel}"
set style fill solid 0.8
set boxwidth 0.6
set yrange [0:*]
set grid ytics
unset key
plot "{data.name}" using 0:2:xtic(1) with boxes lc rgb "#3b6ea8", \\
     "" using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.7
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(data.name)
    return os.path.basename(path)


def fmt(x, digits=0):
    if isinstance(x, float) and x != x:
        return "n/a"
    return f"{x:,.{digits}f}"


def ratio(ours, best, higher_is_better=True):
    if not best or best != best or (not higher_is_better and not ours):
        return "n/a"
    r = ours / best if higher_is_better else best / ours
    return f"{r:.2f}×"


def throughput_medians(runs):
    """The throughput runs, one per system and worker count: the median of its drains (a run
    measures each R times, interleaved with the others, see --drains), with every drain's jobs/s
    in "drains" and ran_once only if every drain ran every job once. In run order."""
    groups = {}
    for r in runs:
        if r.get("scenario") == "throughput":
            groups.setdefault((r["peer"], r["workers"]), []).append(r)
    out = []
    for rs in groups.values():
        ordered = sorted(rs, key=lambda r: r["jobs_per_s"])
        mid = len(ordered) // 2
        median = dict(ordered[mid])
        if len(ordered) % 2 == 0:  # an even count: the mean of the middle two
            median["jobs_per_s"] = (ordered[mid - 1]["jobs_per_s"] + ordered[mid]["jobs_per_s"]) / 2
            median["seconds"] = median["n"] / median["jobs_per_s"]
        median["drains"] = [r["jobs_per_s"] for r in rs]
        median["ran_once"] = all(r.get("ran_once") for r in rs)
        out.append(median)
    return out


def targets_table(results):
    """Issue 4's targets, each met or missed by how much, from this run's figures."""
    runs = results["runs"]
    rows = []

    def add(name, target, value, ok, short_by=None):
        verdict = "met" if ok else "**missed**"
        if not ok and short_by is not None:
            verdict += f" by {short_by:.0%}"
        rows.append(f"| {name} | {target} | {value} | {verdict} |")

    tp = throughput_medians(runs)
    for workers in (1, 2):
        sked = [r for r in tp if r["peer"] == "sked" and r["workers"] == workers and r["ran_once"]]
        peers = [r["jobs_per_s"] for r in tp
                 if r["peer"] != "sked" and r["workers"] == workers and r["ran_once"]]
        if sked and peers:
            x = sked[0]["jobs_per_s"] / max(peers)
            add(f"throughput, {workers} worker(s)", "≥ 3× the best peer", f"{x:.2f}×", x >= 3,
                short_by=1 - x / 3)
    lat = [r for r in runs if r.get("scenario") == "lateness" and r["peer"] == "sked"]
    if lat:
        add("lateness p99", "≤ 5 ms", f"{lat[0]['p99_ms']:.1f} ms", lat[0]["p99_ms"] <= 5)
    sus = [r for r in runs if r.get("scenario") == "sustained" and r["peer"] == "sked"]
    if sus:
        add("sustained lateness p99", "≤ 5 ms", f"{sus[0]['p99_ms']:.1f} ms", sus[0]["p99_ms"] <= 5)
    for r in runs:
        if r.get("scenario") != "api":
            continue
        add(f"GET one task ({r['db']})", "≥ 20 000 req/s", fmt(r["get"]["req_per_s"]),
            r["get"]["req_per_s"] >= 20000)
        add(f"create ({r['db']})", "≥ 5 000 req/s", fmt(r["create"]["req_per_s"]),
            r["create"]["req_per_s"] >= 5000)
        add(f"RSS after the API run ({r['db']})", "≤ 64 MB", f"{r['rss_mb']:.1f} MB", r["rss_mb"] <= 64)
    for r in runs:
        if r.get("scenario") != "scale":
            continue
        worst = max(r[k]["p99_ms"] for k in SCALE_LISTS)
        add(f"list p99 over {r['n']:,} tasks (worst filter)", "≤ 10 ms", f"{worst:.2f} ms",
            worst <= 10)
        add(f"RSS serving {r['n']:,} tasks", "≤ 64 MB", f"{r['rss_mb']:.1f} MB", r["rss_mb"] <= 64)
    if not rows:
        return []
    notes = []
    if any("**missed**" in r for r in rows):
        notes = ["What limits a missed target, and the designs measured against it: "
                 "[bench/README.md](../bench/README.md), \"Where sked stands\".", ""]
    return ["## Targets (issue 4)", "", "| target | wanted | this run | |", "|---|---|---|---|",
            *rows, "", *notes]


def client_bound_line(runs, best):
    """The claim clients' drains (claim_client_throughput), as the report's sentence on what the
    database gives a claim with no sked node in between; None where none ran."""
    medians = {}
    for statements in ("sked", "lean"):
        xs = sorted(r["jobs_per_s"] for r in runs if r.get("scenario") == "claim_client"
                    and r["peer"] == f"claim-client ({statements})" and r.get("ran_once"))
        if xs:
            medians[statements] = xs[len(xs) // 2]
    if len(medians) < 2:
        return None
    line = ("What the database gives a claim with no sked node in between: the same backlog "
            "drained by two bare libpq clients at once (`bench/claim_client.cc`) sending sked's own "
            f"claim statements, {fmt(medians['sked'])} jobs/s; asking the least a claim that keeps "
            "each job's row could ask (the rows locked, only their ids sent back, the outcome "
            f"spelt in the SQL), {fmt(medians['lean'])} jobs/s (medians).")
    if best:
        line += (" Three times the best peer would be " +
                 "; ".join(f"{fmt(3 * best[w])} with {w} worker(s)" for w in sorted(best)) + ".")
    return line


def write_report(out, results, quick, charts_dir):
    m, v = results["machine"], results["versions"]
    lines = ["# Benchmarks", "",
             "Generated by `python3 bench/run.py` on " + results["date"] +
             (" (**quick smoke run: small N, not representative**)" if quick else "") +
             ". Do not edit by hand: run it again.", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Linux {m['kernel']}.  ",
             "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".", "",
             "Ratios compare sked with the best peer measured in the same run (above 1× is better "
             "for sked).", ""]
    tp = throughput_medians(results["runs"])
    if tp:
        drains = max(len(r["drains"]) for r in tp)
        lines += ["## Throughput: a backlog of no-op jobs drained", ""]
        if drains > 1:
            lines += [f"Each system drained the backlog {drains} times, the systems taking turns; "
                      "the table gives each one's median drain, and every drain's jobs/s.", ""]
        lines += ["| system | workers | jobs | seconds | jobs/s | drains (jobs/s) | every job once "
                  "| vs best peer |",
                  "|---|---|---|---|---|---|---|---|"]
        best = {}
        for r in tp:
            if r["peer"] != "sked" and r.get("ran_once"):
                best[r["workers"]] = max(best.get(r["workers"], 0), r["jobs_per_s"])
        for r in tp:
            vs = ratio(r["jobs_per_s"], best.get(r["workers"])) if r["peer"] == "sked" else ""
            lines.append(f"| {r['peer']} | {r['workers']} | {r['n']:,} | {r['seconds']:.2f} | "
                         f"{fmt(r['jobs_per_s'])} | {', '.join(fmt(x) for x in r['drains'])} | "
                         f"{'yes' if r['ran_once'] else '**NO**'} | {vs} |")
        lines.append("")
        cpu = [r for r in tp if r["peer"] == "sked" and "cpu_ms_per_job" in r]  # the median drain's
        if cpu:
            lines += ["sked's own CPU per job during the drain (all its nodes, user + system): " +
                      ", ".join(f"{r['cpu_ms_per_job'] * 1000:.1f} µs with {r['workers']} node(s)"
                                for r in cpu) +
                      ". The rest of the two cores goes to PostgreSQL (see bench/README.md for "
                      "what it spends it on).", ""]
        busy = [r for r in tp if r["peer"] == "sked" and "machine_cpu_us_per_job" in r]
        if busy:
            cores = results["machine"]["cores"]
            lines += ["What bounds sked's drain: the CPU time the whole machine spent per job (every "
                      "process, from sked's start until the end was seen), against what its cores "
                      "supply: " +
                      "; ".join(f"with {r['workers']} node(s) {r['machine_cpu_us_per_job']:.1f} µs "
                                f"(sked's own {r['cpu_ms_per_job'] * 1000:.1f}), at which {cores} "
                                f"cores fully used drain "
                                f"{fmt(cores * 1e6 / r['machine_cpu_us_per_job'])} jobs/s"
                                for r in busy) + " (the median drains).", ""]
        bound = client_bound_line(results["runs"], best)
        if bound:
            lines += [bound, ""]
        up = [r for r in tp if r["peer"] == "sked" and "startup_s" in r]
        if up:
            lines += ["sked's clock runs from its first claim to its last outcome (the peers' from "
                      "the go given to their connected workers); its nodes were started " +
                      ", ".join(f"{r['startup_s'] * 1000:.0f} ms before the first claim with "
                                f"{r['workers']} node(s)" for r in up) +
                      " (the median drain's).", ""]
        png = chart(os.path.join(charts_dir, "throughput.png"), "Throughput (no-op jobs/s)", "jobs/s",
                    [(f"{r['peer']} x{r['workers']}", r["jobs_per_s"]) for r in tp])
        if png:
            lines += [f"![throughput](benchmarks/{png})", ""]
        lines += ["Settings: " + "; ".join(f"{r['peer']}: {json.dumps(r.get('settings', {}))}"
                                          for r in tp if r["workers"] == 1), ""]
    lat = [r for r in results["runs"] if r.get("scenario") == "lateness"]
    if lat:
        best99 = min((r["p99_ms"] for r in lat if r["peer"] != "sked"), default=None)
        lines += ["## Lateness: jobs with run_at spread over time", "",
                  "| system | jobs | spread | p50 ms | p99 ms | max ms | every job once | p99 vs best peer |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in lat:
            vs = ratio(r["p99_ms"], best99, higher_is_better=False) if r["peer"] == "sked" else ""
            lines.append(f"| {r['peer']} | {r['n']:,} | {r.get('spread_s', '')} s | {fmt(r['p50_ms'], 1)} | "
                         f"{fmt(r['p99_ms'], 1)} | {fmt(r['max_ms'], 1)} | "
                         f"{'yes' if r['ran_once'] else '**NO**'} | {vs} |")
        sked_lat = [r for r in lat if r["peer"] == "sked"]
        if sked_lat and "cpu_ms_per_job" in sked_lat[0]:
            lines += ["", f"sked CPU per job: {sked_lat[0]['cpu_ms_per_job']:.3f} ms; "
                          f"RSS {sked_lat[0]['rss_mb']:.1f} MB."]
        png = chart(os.path.join(charts_dir, "lateness.png"), "Lateness p99 (ms, lower is better)", "ms",
                    [(r["peer"], r["p99_ms"]) for r in lat])
        if png:
            lines += ["", f"![lateness](benchmarks/{png})"]
        lines.append("")
    sus = [r for r in results["runs"] if r.get("scenario") == "sustained"]
    if sus:
        peers = [r for r in sus if r["peer"] != "sked"]
        best99 = min((r["p99_ms"] for r in peers), default=None)
        best_cpu = min((r["cpu_ms_per_job"] for r in peers if "cpu_ms_per_job" in r), default=None)
        lines += ["## Sustained: jobs due at a steady rate", "",
                  "| system | jobs | over | rate | p50 ms | p99 ms | max ms | CPU per job | "
                  "every job once | p99 vs best peer | CPU vs best peer |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sus:
            cpu = f"{r['cpu_ms_per_job']:.3f} ms" if "cpu_ms_per_job" in r else "n/a"
            vs99 = vs_cpu = ""
            if r["peer"] == "sked":
                vs99 = ratio(r["p99_ms"], best99, higher_is_better=False)
                if "cpu_ms_per_job" in r:
                    vs_cpu = ratio(r["cpu_ms_per_job"], best_cpu, higher_is_better=False)
            lines.append(f"| {r['peer']} | {r['n']:,} | {r['spread_s']} s | "
                         f"{r['n'] / r['spread_s']:,.0f}/s | {fmt(r['p50_ms'], 1)} | "
                         f"{fmt(r['p99_ms'], 1)} | {fmt(r['max_ms'], 1)} | {cpu} | "
                         f"{'yes' if r['ran_once'] else '**NO**'} | {vs99} | {vs_cpu} |")
        lines += ["", "CPU per job: each system's own processes, user + system, while the jobs were "
                      "due (sked's node from the end of its enqueue; each peer's worker processes "
                      "from their go, given before the enqueue, to their stop); PostgreSQL's share "
                      "is not included in either.", ""]
    api = [r for r in results["runs"] if r.get("scenario") == "api"]
    if api:
        lines += ["## HTTP API (wrk, 2 threads, 32 connections, on the same 2 cores)", "",
                  "| store | route | req/s | p99 ms | non-2xx |", "|---|---|---|---|---|"]
        for r in api:
            for route in ("get", "list", "create"):
                x = r[route]
                lines.append(f"| {r['db']} | {route} | {fmt(x['req_per_s'])} | {x['p99_ms']:.2f} | "
                             f"{x['non_2xx']} |")
        lines += ["", "Routes: get = `GET /v1/tasks/{id}` over 2 000 distinct tasks in turn; list = `GET /v1/tasks?state=succeeded&"
                      "type=noop&limit=20`; create = `POST /v1/tasks` (run_at in 2100).", ""]
    scale = [r for r in results["runs"] if r.get("scenario") == "scale"]
    for r in scale:
        lines += [f"## Scale: {r['n']:,} tasks in the store (PostgreSQL; wrk, 2 threads, "
                  f"{SCALE_CONNECTIONS} connections)", "",
                  "| route | req/s | p99 ms | non-2xx |", "|---|---|---|---|"]
        for route in ("get", *SCALE_LISTS):
            x = r[route]
            lines.append(f"| {route} | {fmt(x['req_per_s'])} | {x['p99_ms']:.2f} | {x['non_2xx']} |")
        lines += ["", f"Node RSS after the run: {r['rss_mb']:.1f} MB. The tasks: seven built-in "
                      "types, 90 % succeeded, 5 % failed, 4 % cancelled, 1 % scheduled, run_at "
                      "over 30 days, a `team` label of 50 values; written by one SQL statement "
                      "(committed synchronously), then `VACUUM ANALYZE` (what autovacuum would "
                      "have done).", "",
                  "Routes: get = `GET /v1/tasks/{id}` over 2 000 tasks sampled across the "
                  "table, in turn, each read once before the measurement; list_state_type = `?state=failed&type=fizz&limit=50`; list_window = "
                  "`?since=2026-11-15T00:00:00Z&until=2026-11-16T00:00:00Z&limit=50` (a day in "
                  "the middle); list_label = `?label=team:team-7&state=succeeded&limit=50`; "
                  "list_window_page2 = the same day's second page (keyset cursor).", ""]
    ceil = [r for r in results["runs"] if r.get("scenario") == "pg_ceiling"]
    if ceil:
        c = ceil[0]
        lines += ["## The PostgreSQL ceiling", "",
                  f"pgbench, one single-row UPDATE per transaction ({c['settings']['clients']} clients): "
                  f"**{fmt(c['single_row_updates_per_s'])} transactions/s**. A job queue that commits "
                  "each job's claim and its completion separately cannot drain faster than about half "
                  "of this.", ""]
    lines += targets_table(results)
    lines += ["## Raw results", "", "```json", json.dumps(results, indent=1), "```", ""]
    with open(out, "w") as f:
        f.write("\n".join(lines))


# --- Main ---------------------------------------------------------------------

SCENARIOS = ["throughput", "lateness", "sustained", "api", "scale", "pg_ceiling"]


def main():
    global SKED_BINARY
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small N: the smoke run")
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--sked", default=SKED_BINARY, help="the sked binary to measure")
    ap.add_argument("--client", default=CLAIM_CLIENT,
                    help="sked-claim-client, drained beside sked in the throughput scenario "
                         "(skipped where it is missing)")
    ap.add_argument("--drains", type=int, default=3,
                    help="drains per system and node count in the throughput scenario; the "
                         "report takes the median (--quick: 1)")
    ap.add_argument("--rewrite", action="store_true",
                    help="measure nothing: regenerate --out from the raw results it holds")
    args = ap.parse_args()
    if args.rewrite:
        text = open(args.out).read()
        raw = text[text.index("```json\n") + 8:text.rindex("```")]
        results = json.loads(raw)
        charts_dir = os.path.join(os.path.dirname(os.path.abspath(args.out)), "benchmarks")
        write_report(args.out, results, results.get("quick", False), charts_dir)
        log("rewrote", args.out)
        return
    SKED_BINARY = os.path.abspath(args.sked)
    only = set(args.only.split(","))
    unknown = only - set(SCENARIOS)
    if unknown:
        sys.exit(f"bench: unknown scenario(s) {sorted(unknown)}; known: {SCENARIOS}")
    n_tp = 2000 if args.quick else int(os.environ.get("BENCH_N", "100000"))
    n_lat, spread = (300, 2) if args.quick else (5000, 10)
    wrk_s = 2 if args.quick else 10

    charts_dir = os.path.join(os.path.dirname(os.path.abspath(args.out)), "benchmarks")
    os.makedirs(charts_dir, exist_ok=True)
    pg = Postgres()
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "quick": args.quick, "machine": machine(), "runs": []}
    try:
        if not args.no_peers:
            ensure_peers()
        results["versions"] = versions(pg)
        runs = results["runs"]
        k = 0
        if "throughput" in only:
            drains = 1 if args.quick else args.drains
            for nodes in (1, 2):
                # The systems take turns, so that the machine's drift over the minutes weighs on
                # each alike; the report takes each one's median drain.
                for rep in range(drains):
                    k += 1
                    runs.append(sked_throughput(pg, n_tp, nodes, f"bench_tp{k}"))
                    runs[-1]["drain"] = rep + 1
                    log(json.dumps(runs[-1]))
                    if not args.no_peers:
                        for peer in PEERS:
                            runs.append(run_peer(peer, ["throughput", "--n", str(n_tp),
                                                        "--workers", str(nodes)], pg))
                            runs[-1]["drain"] = rep + 1
                            log(json.dumps(runs[-1]))
                    if nodes == 2 and os.path.exists(args.client):
                        for statements in ("sked", "lean"):
                            k += 1
                            runs.append(claim_client_throughput(pg, args.client, n_tp, statements,
                                                                2, f"bench_tp{k}"))
                            runs[-1]["drain"] = rep + 1
                            log(json.dumps(runs[-1]))
            if not os.path.exists(args.client):
                log(f"bench: no claim client at {args.client}: its drains are left out")
        if "lateness" in only:
            runs.append(sked_lateness(pg, n_lat, spread, "bench_lat"))
            log(json.dumps(runs[-1]))
            if not args.no_peers:
                for peer in PEERS:
                    runs.append(run_peer(peer, ["lateness", "--n", str(n_lat), "--spread-s",
                                                str(spread)], pg))
                    log(json.dumps(runs[-1]))
        if "sustained" in only:
            n_sus, over = (2000, 2) if args.quick else (60000, 60)
            runs.append(sked_lateness(pg, n_sus, over, "bench_sus", scenario="sustained"))
            log(json.dumps(runs[-1]))
            if not args.no_peers:
                for peer in PEERS:
                    r = run_peer(peer, ["lateness", "--n", str(n_sus), "--spread-s", str(over),
                                        "--timeout-s", str(over + 300)], pg)
                    r["scenario"] = "sustained"
                    runs.append(r)
                    log(json.dumps(runs[-1]))
        if "api" in only:
            sqlite_dir = tempfile.mkdtemp(prefix="sked-bench-sqlite.")
            runs.append(sked_api("sqlite", f"sqlite:{sqlite_dir}/sked.db", wrk_s, []))
            log(json.dumps(runs[-1]))
            runs.append(sked_api("postgres", pg.dsn, wrk_s, ["--db-schema", "bench_api"],
                                 analyze=lambda: pg.psql("ANALYZE bench_api.tasks")))
            log(json.dumps(runs[-1]))
            shutil.rmtree(sqlite_dir, ignore_errors=True)
        if "scale" in only:
            n_scale = int(os.environ.get("BENCH_SCALE_N", 20000 if args.quick else 10_000_000))
            runs.append(sked_scale(pg, n_scale, wrk_s, "bench_scale"))
            log(json.dumps(runs[-1]))
        if "pg_ceiling" in only:
            runs.append(pg_ceiling(pg, 3 if args.quick else 15))
            log(json.dumps(runs[-1]))
    finally:
        pg.stop()
    write_report(args.out, results, args.quick, charts_dir)
    log("wrote", args.out)
    bad = [r for r in results["runs"] if r.get("ran_once") is False]
    if bad:
        log("NOT every job ran exactly once in:", [(r["peer"], r["scenario"]) for r in bad])
        sys.exit(1)


if __name__ == "__main__":
    main()
