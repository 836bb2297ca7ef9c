// Shared harness for the peer drivers (graphile.mjs, pgboss.mjs).
//
// The process started by the user is the *coordinator*: it resets the peer's schema, enqueues
// the jobs, forks the worker processes (always child processes, one per --workers, each running
// ONE worker instance of the peer), times the run, and checks exactly-once from the job ids the
// workers report over IPC. The workers only run the peer's worker and report what they handled.
//
// A peer adapter (see graphile.mjs / pgboss.mjs) provides:
//   peer, version, pkg                    names for the JSON line
//   options                              extra parseArgs options (peer tuning overrides)
//   settings(scenario, args)             the exact peer options used (goes into the JSON)
//   prepare(dsn, settings)               drop + install the peer's schema; returns a ctx
//   enqueue(ctx, jobs, settings)         bulk-insert [{payload}]; returns the job ids (strings)
//   openCount(ctx)                       how many enqueued jobs are not completed yet
//   close(ctx)                           release the coordinator's connections
//   startWorker(dsn, settings, onJob)    (in a worker process) connect, but do not take jobs yet;
//                                        returns {go(), stop()}. onJob(id, payload) per invocation.
//
// stdout gets exactly one JSON line; everything else goes to stderr.

import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

export const log = (...a) => console.error(`[${new Date().toISOString()}]`, ...a);

/** Wall clock in ms since the epoch, with sub-ms resolution. */
export const nowMs = () => performance.timeOrigin + performance.now();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** A sleep that does not keep the process alive (for timeouts raced against real work). */
const timeout = (ms) => new Promise((r) => setTimeout(r, ms).unref());

const USAGE = (peer) => `usage:
  node ${peer}.mjs throughput --dsn DSN [--n 100000] [--concurrency 16] [--workers 1] [--chunk 1000]
  node ${peer}.mjs lateness   --dsn DSN [--n 5000] [--spread-s 10] [--concurrency 16] [--workers 1]
common: [--timeout-s 600] [--grace-ms 300]   (see README.md for the peer tuning overrides)`;

function parse(adapter, argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dsn: { type: 'string' },
      n: { type: 'string' },
      concurrency: { type: 'string', default: '16' },
      workers: { type: 'string', default: '1' },
      'spread-s': { type: 'string', default: '10' },
      chunk: { type: 'string', default: '1000' },
      'timeout-s': { type: 'string', default: '600' },
      'grace-ms': { type: 'string', default: '300' },
      help: { type: 'boolean', short: 'h' },
      ...adapter.options,
    },
  });
  if (values.help) {
    console.error(USAGE(adapter.script));
    process.exit(0);
  }
  const scenario = positionals[0];
  if (!['throughput', 'lateness'].includes(scenario) || positionals.length !== 1) {
    throw new Error(`expected one scenario, throughput or lateness\n${USAGE(adapter.script)}`);
  }
  if (!values.dsn) throw new Error('--dsn is required');
  const int = (name, v, min) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return x;
  };
  const num = (name, v, min) => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < min) throw new Error(`--${name} must be a number >= ${min}`);
    return x;
  };
  return {
    ...values,
    scenario,
    dsn: values.dsn,
    n: int('n', values.n ?? (scenario === 'throughput' ? '100000' : '5000'), 1),
    concurrency: int('concurrency', values.concurrency, 1),
    workers: int('workers', values.workers, 1),
    spreadS: num('spread-s', values['spread-s'], 0),
    chunk: int('chunk', values.chunk, 1),
    timeoutS: num('timeout-s', values['timeout-s'], 1),
    graceMs: num('grace-ms', values['grace-ms'], 0),
  };
}

// ---------------------------------------------------------------- worker process side

async function workerMain(adapter) {
  const { dsn, settings } = JSON.parse(process.env.PEER_BENCH_WORKER);
  let ids = [];
  let late = [];
  const onJob = (id, payload) => {
    const t = nowMs();
    ids.push(String(id));
    late.push(payload && typeof payload.s === 'number' ? t - payload.s : null);
  };
  const flush = () => {
    if (ids.length === 0) return;
    process.send({ t: 'h', ids, late });
    ids = [];
    late = [];
  };
  const flusher = setInterval(flush, 20);
  const w = await adapter.startWorker(dsn, settings, onJob);
  let cpuAtGo = null; // this process's CPU (user + system) from the go to the stop
  process.on('message', async (m) => {
    try {
      if (m.t === 'go') {
        cpuAtGo = process.cpuUsage();
        await w.go();
        process.send({ t: 'started' });
      } else if (m.t === 'stop') {
        const cpu = cpuAtGo ? process.cpuUsage(cpuAtGo) : { user: 0, system: 0 };
        await w.stop();
        clearInterval(flusher);
        flush();
        process.send({ t: 'final', cpuUs: cpu.user + cpu.system }, () => process.disconnect());
      }
    } catch (err) {
      log('worker error:', err);
      process.exit(1);
    }
  });
  process.send({ t: 'ready' });
}

// ---------------------------------------------------------------- coordinator side

class Workers {
  constructor(script, count, dsn, settings) {
    this.counts = new Map(); // job id -> handler invocations
    this.late = new Map(); // job id -> lateness of the first invocation (ms)
    this.invocations = 0;
    this.cpuUs = 0; // the workers' CPU from the go to the stop, summed when each reports its final
    this.children = [];
    this.failed = null;
    for (let i = 0; i < count; i++) {
      const child = fork(script, [], {
        env: { ...process.env, PEER_BENCH_WORKER: JSON.stringify({ dsn, settings, index: i }) },
        stdio: ['ignore', 2, 2, 'ipc'], // a worker's stdout goes to our stderr: stdout is for the JSON line
      });
      this.children.push(child);
      child.waiters = [];
      child.on('message', (m) => {
        if (m.t === 'h') {
          for (let k = 0; k < m.ids.length; k++) {
            const id = m.ids[k];
            const c = this.counts.get(id) ?? 0;
            this.counts.set(id, c + 1);
            if (c === 0 && m.late[k] !== null) this.late.set(id, m.late[k]);
          }
          this.invocations += m.ids.length;
        } else {
          if (m.t === 'final') this.cpuUs += m.cpuUs ?? 0;
          const w = child.waiters.findIndex((x) => x.t === m.t);
          if (w >= 0) child.waiters.splice(w, 1)[0].resolve();
        }
      });
      child.exited = new Promise((resolve) =>
        child.on('exit', (code, signal) => {
          if (code !== 0 && !this.stopping) this.failed = new Error(`worker ${i} exited: ${code ?? signal}`);
          for (const w of child.waiters) w.reject(new Error(`worker ${i} exited: ${code ?? signal}`));
          child.waiters = [];
          resolve({ code, signal });
        }),
      );
    }
  }
  waitAll(t) {
    return Promise.all(
      this.children.map((c) => {
        if (c.exitCode !== null) return Promise.reject(new Error('worker already exited'));
        return new Promise((resolve, reject) => c.waiters.push({ t, resolve, reject }));
      }),
    );
  }
  send(m) {
    for (const c of this.children) c.send(m);
  }
  async stop() {
    this.stopping = true;
    const finals = this.waitAll('final').catch((e) => e);
    this.send({ t: 'stop' });
    const r = await Promise.race([finals, timeout(30000).then(() => new Error('workers did not stop in 30 s'))]);
    const exits = await Promise.race([
      Promise.all(this.children.map((c) => c.exited)),
      timeout(10000).then(() => null),
    ]);
    if (exits === null) {
      for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
      throw new Error('workers did not exit in 10 s after stopping');
    }
    if (r instanceof Error) throw r;
    const bad = exits.find((e) => e.code !== 0);
    if (bad) throw new Error(`a worker exited with ${bad.code ?? bad.signal}`);
  }
  kill() {
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
  }
}

function check(counts, enqueuedIds) {
  const enq = new Set(enqueuedIds);
  let duplicates = 0;
  let missing = 0;
  let unknown = 0;
  for (const [id, c] of counts) {
    if (!enq.has(id)) unknown += c;
    else if (c > 1) duplicates += c - 1;
  }
  for (const id of enq) if (!counts.has(id)) missing++;
  return { duplicates, missing, unknown, ran_once: duplicates === 0 && missing === 0 && unknown === 0 };
}

const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

function pct(sorted, p) {
  if (sorted.length === 0) return null;
  const k = Math.max(0, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.min(k, sorted.length - 1)];
}

async function enqueueAll(adapter, ctx, settings, n, chunk, makePayload) {
  const ids = [];
  for (let off = 0; off < n; off += chunk) {
    const jobs = [];
    for (let k = off; k < Math.min(n, off + chunk); k++) jobs.push({ payload: makePayload(k) });
    const got = await adapter.enqueue(ctx, jobs, settings);
    if (got.length !== jobs.length) throw new Error(`enqueue returned ${got.length} ids for ${jobs.length} jobs`);
    for (const id of got) ids.push(String(id));
  }
  if (new Set(ids).size !== n) throw new Error('enqueue returned duplicate job ids');
  return ids;
}

async function waitHandled(workers, n, deadline, what) {
  while (workers.counts.size < n) {
    if (workers.failed) throw workers.failed;
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

async function coordinatorMain(adapter, script, argv) {
  const args = parse(adapter, argv);
  const settings = adapter.settings(args.scenario, args);
  const base = {
    peer: adapter.peer,
    version: adapter.version,
    scenario: args.scenario,
    n: args.n,
    workers: args.workers,
  };
  log(`${adapter.peer} ${adapter.version} ${args.scenario} n=${args.n} workers=${args.workers}`, JSON.stringify(settings));
  const ctx = await adapter.prepare(args.dsn, settings);
  let workers = null;
  let timedOut = false;
  try {
    const deadline = () => performance.now() + args.timeoutS * 1000;
    if (args.scenario === 'throughput') {
      let t = performance.now();
      const ids = await enqueueAll(adapter, ctx, settings, args.n, args.chunk, () => ({}));
      const enqueueSeconds = (performance.now() - t) / 1000;
      // Statistics for the backlog, as a queue's tables in service have them (autovacuum
      // analyses a table within a minute of a bulk insert), and as sked's harness gives sked's:
      // without them graphile-worker drains at half its speed (bench/README.md).
      await ctx.pool.query('ANALYZE');
      log(`enqueued ${ids.length} jobs in ${round(enqueueSeconds)} s and analysed them; starting ${args.workers} worker process(es)`);
      workers = new Workers(script, args.workers, args.dsn, settings);
      await workers.waitAll('ready');
      const end = deadline();
      const t0 = performance.now();
      workers.send({ t: 'go' });
      let lastLog = t0;
      // Every handler invocation seen, then the database must agree that all jobs are completed.
      while (workers.counts.size < args.n) {
        if (workers.failed) throw workers.failed;
        if (performance.now() > end) { timedOut = true; break; }
        if (performance.now() - lastLog > 2000) {
          lastLog = performance.now();
          log(`handled ${workers.counts.size}/${args.n}`);
        }
        await sleep(5);
      }
      while (!timedOut && (await adapter.openCount(ctx)) > 0) {
        if (performance.now() > end) { timedOut = true; break; }
        await sleep(5);
      }
      const seconds = (performance.now() - t0) / 1000;
      await sleep(args.graceMs); // let any late duplicate show up before we stop
      await workers.stop();
      const c = check(workers.counts, ids);
      const out = {
        ...base,
        seconds: round(seconds),
        jobs_per_s: round(args.n / seconds, 1),
        ran_once: c.ran_once,
        duplicates: c.duplicates,
        missing: c.missing,
        unknown: c.unknown,
        invocations: workers.invocations,
        cpu_ms_per_job: round(workers.cpuUs / 1000 / args.n, 4),
        enqueue_seconds: round(enqueueSeconds),
        worker_mode: `${args.workers} worker process(es) (child_process.fork), one ${adapter.peer} instance each`,
        settings,
        node: process.version,
        ...(timedOut ? { timed_out: true } : {}),
      };
      console.log(JSON.stringify(out));
    } else {
      workers = new Workers(script, args.workers, args.dsn, settings);
      await workers.waitAll('ready');
      const started = workers.waitAll('started');
      workers.send({ t: 'go' });
      await started;
      log(`worker(s) running; enqueueing ${args.n} jobs spread over ${args.spreadS} s starting in 2 s`);
      const first = Date.now() + 2000;
      const span = args.spreadS * 1000;
      const schedAt = (k) => (args.n === 1 ? first : first + Math.round((span * k) / (args.n - 1)));
      const t = performance.now();
      const ids = await enqueueAll(adapter, ctx, settings, args.n, args.chunk, (k) => ({ s: schedAt(k) }));
      const enqueueSeconds = (performance.now() - t) / 1000;
      const doneEnqueue = Date.now();
      if (doneEnqueue > first) log(`WARNING: enqueue finished ${doneEnqueue - first} ms after the first run time`);
      const end = performance.now() + (2 + args.spreadS) * 1000 + args.timeoutS * 1000;
      timedOut = !(await waitHandled(workers, args.n, end));
      await sleep(args.graceMs);
      await workers.stop();
      const c = check(workers.counts, ids);
      const late = [...workers.late.values()].sort((a, b) => a - b);
      const mean = late.reduce((a, b) => a + b, 0) / (late.length || 1);
      const out = {
        ...base,
        spread_s: args.spreadS,
        p50_ms: round(pct(late, 50)),
        p90_ms: round(pct(late, 90)),
        p99_ms: round(pct(late, 99)),
        max_ms: round(late[late.length - 1]),
        min_ms: round(late[0]),
        mean_ms: round(mean),
        ran_once: c.ran_once,
        duplicates: c.duplicates,
        missing: c.missing,
        unknown: c.unknown,
        cpu_ms_per_job: round(workers.cpuUs / 1000 / args.n, 4),
        enqueue_seconds: round(enqueueSeconds),
        enqueue_late_ms: Math.max(0, doneEnqueue - first),
        worker_mode: `${args.workers} worker process(es) (child_process.fork), one ${adapter.peer} instance each`,
        settings,
        node: process.version,
        ...(timedOut ? { timed_out: true } : {}),
      };
      console.log(JSON.stringify(out));
    }
  } catch (err) {
    if (workers) workers.kill();
    throw err;
  } finally {
    await adapter.close(ctx);
  }
  return timedOut ? 2 : 0;
}

/** Entry point for a peer script: `await main(adapter, import.meta.url)`. */
export async function main(adapter, scriptUrl) {
  try {
    if (process.env.PEER_BENCH_WORKER) {
      await workerMain(adapter);
      return;
    }
    const script = new URL(scriptUrl).pathname;
    const code = await coordinatorMain(adapter, script, process.argv.slice(2));
    process.exitCode = code;
  } catch (err) {
    log('error:', err?.stack ?? err);
    process.exit(1);
  }
}
