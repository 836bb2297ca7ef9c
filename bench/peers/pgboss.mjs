#!/usr/bin/env node
// pg-boss driver for the sked benchmarks. See README.md.
//
//   node pgboss.mjs throughput --dsn DSN --n 100000 [--concurrency 16] [--workers 1]
//   node pgboss.mjs lateness   --dsn DSN --n 5000 --spread-s 10 [--concurrency 16]
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { log, main } from './lib/harness.mjs';

const pkg = JSON.parse(readFileSync(new URL('./node_modules/pg-boss/package.json', import.meta.url)));
const SCHEMA = 'pgboss';
const QUEUE = 'bench-noop';

const num = (v, name) => {
  const x = Number(v);
  if (!Number.isFinite(x)) throw new Error(`--${name} must be a number`);
  return x;
};

function newBoss(dsn, ctor) {
  const boss = new PgBoss({ connectionString: dsn, ...ctor });
  boss.on('error', (err) => log('pg-boss error:', err?.message ?? err));
  boss.on('warning', (w) => log('pg-boss warning:', JSON.stringify(w)));
  return boss;
}

const adapter = {
  script: 'pgboss',
  peer: 'pg-boss',
  version: pkg.version,
  options: {
    'batch-size': { type: 'string' },
    'polling-interval-s': { type: 'string' },
    'pool-max': { type: 'string' },
    'no-burst': { type: 'boolean' },
  },

  // The exact constructor and work() options used; printed as "settings".
  settings(scenario, args) {
    const constructor = {
      schema: SCHEMA,
      // The pool size (node-postgres "max"); pg-boss' default is 10. Each of the
      // localConcurrency polling loops holds a connection for its fetch and its complete.
      max: args['pool-max'] ? num(args['pool-max'], 'pool-max') : Math.max(10, args.concurrency + 2),
    };
    const work = {
      // "batchSize: The number of jobs to fetch" (default 1): the handler gets an array.
      batchSize: 1000,
      // "Number of workers to spawn for this queue (per-node). Each worker polls and processes
      // jobs independently." pg-boss' per-instance concurrency knob, set from --concurrency.
      localConcurrency: args.concurrency,
    };
    if (scenario === 'throughput') {
      work.pollingIntervalSeconds = 2; // the default
      // "While each fetch returns a full batchSize batch there is clearly more work, so the
      // worker keeps fetching continuously with no delay" -- without it every batch of 1000 is
      // followed by a pollingIntervalSeconds wait.
      work.burstWhenBatchFull = true;
    } else {
      // The documented minimum: "Must be >= 0.5 (500 ms)". Scheduled (startAfter) jobs are only
      // found by polling; LISTEN/NOTIFY (useListenNotify + queue notify) fires at insert time,
      // not when a deferred job becomes due, so it is not used.
      work.pollingIntervalSeconds = 0.5;
      work.burstWhenBatchFull = true;
    }
    if (args['batch-size']) work.batchSize = num(args['batch-size'], 'batch-size');
    if (args['polling-interval-s']) work.pollingIntervalSeconds = num(args['polling-interval-s'], 'polling-interval-s');
    if (args['no-burst']) work.burstWhenBatchFull = false;
    return {
      constructor,
      queue: { name: QUEUE, policy: 'standard' },
      work,
      enqueue: `boss.insert(queue, jobs, { returnId: true }) in chunks of ${args.chunk}`,
    };
  },

  async prepare(dsn, settings) {
    const pool = new pg.Pool({ connectionString: dsn, max: 2 });
    pool.on('error', (err) => log('coordinator pool error:', err.message));
    await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    // The coordinator only installs the schema and enqueues: no maintenance, no cron.
    const boss = newBoss(dsn, { ...settings.constructor, max: 4, supervise: false, schedule: false });
    await boss.start();
    await boss.createQueue(QUEUE, { policy: settings.queue.policy });
    return { pool, boss };
  },

  async enqueue(ctx, jobs) {
    const rows = jobs.map((j) => {
      const row = { data: j.payload };
      if (typeof j.payload.s === 'number') row.startAfter = new Date(j.payload.s);
      return row;
    });
    const ids = await ctx.boss.insert(QUEUE, rows, { returnId: true });
    return ids ?? [];
  },

  async openCount(ctx) {
    const { rows } = await ctx.pool.query(
      `SELECT count(*)::int AS n FROM ${SCHEMA}.job WHERE name = $1 AND state <> 'completed'`,
      [QUEUE],
    );
    return rows[0].n;
  },

  async close(ctx) {
    if (!ctx) return;
    await ctx.boss.stop({ graceful: false, close: true });
    await ctx.pool.end();
  },

  async startWorker(dsn, settings, onJob) {
    // Defaults otherwise (supervise and schedule on), as a deployed worker would run.
    const boss = newBoss(dsn, settings.constructor);
    await boss.start(); // connected and migrated before the clock starts
    return {
      async go() {
        await boss.work(QUEUE, { ...settings.work }, async (jobs) => {
          for (const job of jobs) onJob(job.id, job.data);
        });
      },
      async stop() {
        await boss.stop({ graceful: true, close: true });
      },
    };
  },
};

await main(adapter, import.meta.url);
