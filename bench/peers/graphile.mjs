#!/usr/bin/env node
// graphile-worker driver for the sked benchmarks. See README.md.
//
//   node graphile.mjs throughput --dsn DSN --n 100000 [--concurrency 16] [--workers 1]
//   node graphile.mjs lateness   --dsn DSN --n 5000 --spread-s 10 [--concurrency 16]
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import { log, main } from './lib/harness.mjs';

const pkg = JSON.parse(readFileSync(new URL('./node_modules/graphile-worker/package.json', import.meta.url)));
const SCHEMA = 'graphile_worker';
const TASK = 'noop';

// graphile-worker logs every completed job at "info"; 100k lines of stderr would be a large part
// of what a throughput run measures, so only warnings and errors are printed.
const logger = new Logger((scope) => (level, message) => {
  if (level === 'error' || level === 'warning') log(`[graphile-worker ${scope.label ?? ''}] ${level}: ${message}`);
});

const int = (v, name) => {
  const x = Number(v);
  if (!Number.isInteger(x)) throw new Error(`--${name} must be an integer`);
  return x;
};

const adapter = {
  script: 'graphile',
  peer: 'graphile-worker',
  version: pkg.version,
  options: {
    'poll-interval-ms': { type: 'string' },
    'local-queue-size': { type: 'string' },
    'complete-job-batch-delay': { type: 'string' },
    'max-pool-size': { type: 'string' },
  },

  // The exact preset.worker options handed to run(); printed as "settings".
  settings(scenario, args) {
    const concurrentJobs = args.concurrency;
    // "If in doubt, we recommend setting it to 10 or concurrentJobs + 2, whichever is larger."
    const maxPoolSize = args['max-pool-size'] ? int(args['max-pool-size'], 'max-pool-size') : Math.max(10, concurrentJobs + 2);
    let worker;
    if (scenario === 'throughput') {
      // As in https://worker.graphile.org/docs/performance ("Quick stats ... achieved with this
      // configuration"): localQueue { size: 500 }, completeJobBatchDelay 0, failJobBatchDelay 0.
      worker = {
        concurrentJobs,
        maxPoolSize,
        pollInterval: 2000, // the default
        localQueue: { size: 500 },
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
      };
    } else {
      // Low latency: new jobs arrive by LISTEN/NOTIFY, but jobs whose run_at is in the future
      // are found by polling, so pollInterval bounds the lateness. The local queue is left off
      // (the default): its docs say it "can increase the latency of job execution".
      worker = {
        concurrentJobs,
        maxPoolSize,
        pollInterval: 100,
        localQueue: { size: -1 },
        completeJobBatchDelay: -1, // the default
        failJobBatchDelay: -1, // the default
      };
    }
    if (args['poll-interval-ms']) worker.pollInterval = int(args['poll-interval-ms'], 'poll-interval-ms');
    if (args['local-queue-size']) worker.localQueue = { size: int(args['local-queue-size'], 'local-queue-size') };
    if (args['complete-job-batch-delay']) {
      worker.completeJobBatchDelay = int(args['complete-job-batch-delay'], 'complete-job-batch-delay');
      worker.failJobBatchDelay = worker.completeJobBatchDelay;
    }
    return {
      preset_worker: { schema: SCHEMA, ...worker },
      enqueue: `WorkerUtils.addJobs in chunks of ${args.chunk}`,
      logger: 'warning+error only',
      prepared_statements: true,
    };
  },

  async prepare(dsn) {
    const pool = new pg.Pool({ connectionString: dsn, max: 4 });
    pool.on('error', (err) => log('coordinator pool error:', err.message));
    pool.on('connect', (client) => client.on('error', (err) => log('coordinator client error:', err.message)));
    await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    const utils = await makeWorkerUtils({ pgPool: pool, schema: SCHEMA, logger });
    await utils.migrate();
    return { pool, utils };
  },

  async enqueue(ctx, jobs, settings) {
    const specs = jobs.map((j) => {
      const spec = { identifier: TASK, payload: j.payload };
      if (typeof j.payload.s === 'number') spec.runAt = new Date(j.payload.s);
      return spec;
    });
    const added = await ctx.utils.addJobs(specs);
    return added.map((job) => job.id);
  },

  async openCount(ctx) {
    // Completed jobs are deleted from the table.
    const { rows } = await ctx.pool.query(`SELECT count(*)::int AS n FROM ${SCHEMA}._private_jobs`);
    return rows[0].n;
  },

  async close(ctx) {
    if (!ctx) return;
    await ctx.utils.release();
    await ctx.pool.end();
  },

  async startWorker(dsn, settings, onJob) {
    const w = settings.preset_worker;
    const pool = new pg.Pool({ connectionString: dsn, max: w.maxPoolSize });
    pool.on('error', (err) => log('worker pool error:', err.message));
    pool.on('connect', (client) => client.on('error', (err) => log('worker client error:', err.message)));
    // Open the pool's connections before the clock starts.
    const clients = await Promise.all(Array.from({ length: w.maxPoolSize }, () => pool.connect()));
    for (const c of clients) c.release();
    let runner = null;
    return {
      async go() {
        runner = await run({
          pgPool: pool,
          logger,
          noHandleSignals: true,
          parsedCronItems: [],
          taskList: {
            [TASK]: async (payload, helpers) => {
              onJob(helpers.job.id, payload);
            },
          },
          preset: { worker: { ...w } },
        });
      },
      async stop() {
        if (runner) await runner.stop();
        await pool.end();
      },
    };
  },
};

await main(adapter, import.meta.url);
