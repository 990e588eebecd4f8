/**
 * `npm run bench [-- --quick] [-- --only=<scenario>] [-- --json]`: throughput and latency of the queue core.
 *
 *   enqueue  enqueueJobs in batches of 1,000 and 100, from 1 and 4 connections
 *   claim    claimJobs + completeJobs with a no-op handler, B jobs per claim, W workers,
 *            next to a bare hand-written SKIP LOCKED queue (bench_bare) at B=100, W=4, and
 *            completeAndClaimJobs (the processor's loop: one statement per batch)
 *   processor  runProcessor with a no-op job: 4 concurrent invocations, each with its own pool
 *            (DB_POOL_MAX's default, as in Lambda), default settings, fair claim and priority
 *            claim, next to the engine's completeAndClaimJobs at B=100 W=4 measured in the same
 *            run; commits per job from pg_stat_database's xact_commit
 *   pgbench  pgbench (-c 4 -j 2) claiming one row with SKIP LOCKED and marking it done, in one
 *            transaction and in two (as a real queue commits), and the same bare queue driven
 *            from Node (4 connections): what a Node client reaches at all; next to our B=1, W=4
 *   stats    queueStats() and claim+complete latency with 1,000,000 jobs of history in the table
 *
 * Every scenario case gets a database of its own (bench_<random>), created on the server of
 * DATABASE_URL, else the one on 127.0.0.1:5432, else an embedded one; migrated, and dropped
 * afterwards, also on error or Ctrl-C. Commits are durable: fsync and synchronous_commit are
 * left as the server has them, and printed. Progress goes to stderr; the results to stdout.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client, type Pool, type PoolClient } from 'pg';
import { Logger } from '@aws-lambda-powertools/logger';
import { databaseConfig, processorConfig } from '../lambda/core/config';
import { createPool, poolConfig } from '../lambda/core/db';
import { ForwardingMetrics } from '../lambda/core/metrics';
import { runProcessor } from '../lambda/core/processor';
import { migrate } from '../lambda/core/migrate';
import {
  claimJobs,
  completeAndClaimJobs,
  completeJobs,
  enqueueJobs,
  queueStats,
  type ClaimedJob,
  type NewJob,
} from '../lambda/core/queue';
import { claimThroughput, smallClientStart, type StartRow } from './bench-fairness';
import { benchPipeline } from './bench-pipeline';
import { findServer, withDatabaseName, type Server } from './bench-server';

// ---------------------------------------------------------------------------
// Sizes

interface Sizes {
  enqueueJobs: number;
  /** Jobs pre-enqueued for a claim run, by claim batch size. */
  claimJobs: Record<1 | 10 | 100, number>;
  /** Rounds of the processor scenario (engine, fair, priority each). */
  processorRounds: number;
  pgbenchSeconds: number;
  /** Rows in bench_bare for pgbench; more than it can consume in pgbenchSeconds. */
  pgbenchRows: number;
  historyRows: number;
  queuedRows: number;
  runningRows: number;
  latencySamples: number;
  /** Jobs per mode for the fair-claim throughput runs. */
  fairnessJobs: number;
  /** The big client's backlog when the small client submits. */
  fairnessBacklog: number;
}

const FULL: Sizes = {
  enqueueJobs: 200_000,
  claimJobs: { 1: 20_000, 10: 60_000, 100: 200_000 },
  processorRounds: 3,
  pgbenchSeconds: 10,
  pgbenchRows: 300_000,
  historyRows: 1_000_000,
  queuedRows: 10_000,
  runningRows: 100,
  latencySamples: 50,
  fairnessJobs: 50_000,
  fairnessBacklog: 100_000,
};

const QUICK: Sizes = {
  enqueueJobs: 20_000,
  claimJobs: { 1: 1_000, 10: 4_000, 100: 20_000 },
  processorRounds: 1,
  pgbenchSeconds: 3,
  pgbenchRows: 60_000,
  historyRows: 100_000,
  queuedRows: 2_000,
  runningRows: 100,
  latencySamples: 20,
  fairnessJobs: 5_000,
  // Enough that the strict claim is still draining it when the small client submits, 300 ms in.
  fairnessBacklog: 40_000,
};

const SCENARIOS = ['enqueue', 'claim', 'processor', 'pgbench', 'stats', 'fairness', 'pipeline'] as const;
type Scenario = (typeof SCENARIOS)[number];

// A fixed set of tenants, so the per-client indexes see the spread a real queue has.
const CLIENT_IDS = Array.from({ length: 10 }, (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`);

// What the upload route enqueues, near enough.
const newJob = (i: number): NewJob => ({
  clientId: CLIENT_IDS[i % CLIENT_IDS.length]!,
  payload: { contentType: 'text/plain', filename: `doc-${i}.txt` },
});

const NOOP_RESULT = { summary: 'ok' };
const LEASE_SECONDS = 300;

// ---------------------------------------------------------------------------
// Results

interface Throughput {
  scenario: Scenario;
  case: string;
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  /**
   * Cluster-wide WAL written during the run, per job: includes anything else the server did
   * meanwhile. null where the run is timed elsewhere (fairness).
   */
  walBytesPerJob: number | null;
  /** CPU of this Node process per job; null for pgbench, a process of its own. */
  nodeCpuUsPerJob: number | null;
  /** CPU of the run's Postgres backends per job; null when the server is not on this machine, and for pgbench. */
  pgCpuUsPerJob: number | null;
  note?: string;
}

interface Latency {
  scenario: Scenario;
  case: string;
  samples: number;
  p50Ms: number;
  p95Ms: number;
  note?: string;
}

interface Results {
  machine: Record<string, string | number>;
  throughput: Throughput[];
  latency: Latency[];
  smallClientStart: StartRow[];
}

const log = (message: string) => process.stderr.write(`${message}\n`);

// ---------------------------------------------------------------------------
// Server and per-case databases


async function adminQuery(server: Server, sql: string): Promise<void> {
  const client = new Client({ connectionString: server.adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

// Databases that exist right now, so Ctrl-C can drop them too.
const liveDatabases = new Set<string>();

interface BenchDb {
  name: string;
  url: string;
  pool: Pool;
  drop: () => Promise<void>;
}

/** A fresh, migrated database (bench_<random>) with a pool on it. */
async function createBenchDatabase(server: Server, poolMax: number): Promise<BenchDb> {
  const name = `bench_${randomBytes(6).toString('hex')}`;
  await adminQuery(server, `CREATE DATABASE ${name}`);
  liveDatabases.add(name);
  const url = withDatabaseName(server.adminUrl, name);
  const pool = createPool({ connectionString: url, max: poolMax, application_name: 'summary-jobs-bench' });
  const drop = async () => {
    await pool.end().catch(() => undefined);
    await adminQuery(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    liveDatabases.delete(name);
  };
  try {
    await migrate(pool);
  } catch (err) {
    await drop();
    throw err;
  }
  return { name, url, pool, drop };
}

/** Runs fn against a fresh, migrated database that is dropped afterwards whatever happens. */
async function withFreshDatabase<T>(server: Server, poolMax: number, fn: (db: BenchDb) => Promise<T>): Promise<T> {
  const db = await createBenchDatabase(server, poolMax);
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

/**
 * For scenarios that create databases as they go (bench-fairness.ts): fn gets a factory of
 * fresh, migrated databases, all of them dropped afterwards whatever happens.
 */
async function withFreshDatabases<T>(server: Server, poolMax: number, fn: (fresh: () => Promise<Pool>) => Promise<T>): Promise<T> {
  const created: BenchDb[] = [];
  try {
    return await fn(async () => {
      const db = await createBenchDatabase(server, poolMax);
      created.push(db);
      return db.pool;
    });
  } finally {
    for (const db of created) await db.drop();
  }
}

/** Holds n pooled connections for the whole of fn: each concurrent loop gets one of its own. */
async function withClients<T>(pool: Pool, n: number, fn: (clients: PoolClient[]) => Promise<T>): Promise<T> {
  const clients = await Promise.all(Array.from({ length: n }, () => pool.connect()));
  // On Ctrl-C the database is dropped WITH (FORCE) under these connections; the error that
  // brings must not crash the process before the drop has finished.
  const ignore = () => undefined;
  for (const client of clients) client.on('error', ignore);
  try {
    return await fn(clients);
  } finally {
    for (const client of clients) {
      client.off('error', ignore);
      client.release();
    }
  }
}

/** Runs one loop per client, concurrently. */
async function inParallel(clients: PoolClient[], loop: (client: PoolClient, index: number) => Promise<void>): Promise<void> {
  await Promise.all(clients.map((client, i) => loop(client, i)));
}

// ---------------------------------------------------------------------------
// Measuring

async function walLsn(db: PoolClient): Promise<string> {
  const { rows } = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return rows[0]!.lsn;
}

async function walBytesSince(db: PoolClient, lsn: string): Promise<number> {
  const { rows } = await db.query<{ bytes: number }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::float8 AS bytes', [lsn]);
  return rows[0]!.bytes;
}

// CPU seconds a process has used (utime + stime, in USER_HZ ticks), or null when it is not a
// Postgres process on this machine (a remote server). Wall-clock figures swing with whatever
// else the machine runs; CPU per job is what a change to the queue moves.
const CLOCK_TICKS_PER_SECOND = 100;

function postgresCpuSeconds(pid: number): number | null {
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('postgres')) return null;
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

function backendsCpuSeconds(pids: number[]): number | null {
  const each = pids.map(postgresCpuSeconds);
  return each.every((s) => s !== null) ? each.reduce((a, b) => a! + b!, 0) : null;
}

/**
 * Times run(), which returns how many jobs it handled, on the given connections, with the
 * WAL written meanwhile and the CPU spent by this process and by those connections' backends.
 */
async function measure(
  scenario: Scenario,
  label: string,
  clients: PoolClient[],
  run: () => Promise<number>,
): Promise<Throughput> {
  const first = clients[0]!;
  const pids: number[] = [];
  for (const c of clients) pids.push((await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
  const lsn = await walLsn(first);
  const pgBefore = backendsCpuSeconds(pids);
  const nodeBefore = process.cpuUsage();
  const start = performance.now();
  const jobs = await run();
  const seconds = (performance.now() - start) / 1000;
  const node = process.cpuUsage(nodeBefore);
  const pgAfter = backendsCpuSeconds(pids);
  const wal = await walBytesSince(first, lsn);
  const result: Throughput = {
    scenario,
    case: label,
    jobs,
    seconds,
    jobsPerSecond: jobs / seconds,
    walBytesPerJob: wal / jobs,
    nodeCpuUsPerJob: (node.user + node.system) / jobs,
    pgCpuUsPerJob: pgBefore !== null && pgAfter !== null ? ((pgAfter - pgBefore) * 1e6) / jobs : null,
  };
  log(
    `  ${label}: ${fmt(result.jobsPerSecond)} jobs/s (${jobs} in ${seconds.toFixed(2)} s, ` +
      `${fmt(wal / jobs)} WAL B/job, CPU us/job node ${cpu(result.nodeCpuUsPerJob)} pg ${cpu(result.pgCpuUsPerJob)})`,
  );
  return result;
}

/** Calls fn n times one after another, after a few unmeasured warm-up calls. */
async function latencies(scenario: Scenario, label: string, n: number, fn: () => Promise<unknown>): Promise<Latency> {
  for (let i = 0; i < 3; i += 1) await fn();
  const ms: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const start = performance.now();
    await fn();
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  // Nearest rank.
  const pct = (p: number) => ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)]!;
  const result = { scenario, case: label, samples: n, p50Ms: pct(50), p95Ms: pct(95) };
  log(`  ${label}: p50 ${result.p50Ms.toFixed(2)} ms, p95 ${result.p95Ms.toFixed(2)} ms`);
  return result;
}

// ---------------------------------------------------------------------------
// Queue work through the API

function batchesOf(total: number, size: number): NewJob[][] {
  const batches: NewJob[][] = [];
  for (let start = 0; start < total; start += size) {
    batches.push(Array.from({ length: Math.min(size, total - start) }, (_, i) => newJob(start + i)));
  }
  return batches;
}

/** Enqueues the batches from all the connections at once, each taking the next batch. */
async function enqueueBatches(clients: PoolClient[], batches: NewJob[][]): Promise<number> {
  let next = 0;
  let jobs = 0;
  await inParallel(clients, async (client) => {
    while (next < batches.length) {
      const batch = batches[next++]!;
      await enqueueJobs(client, batch);
      jobs += batch.length;
    }
  });
  return jobs;
}

/** One worker per connection claims B jobs at a time and completes them all, until the queue is empty. */
async function drainQueue(workers: PoolClient[], batch: number): Promise<number> {
  let done = 0;
  await inParallel(workers, async (client, w) => {
    for (;;) {
      const jobs = await claimJobs(client, { workerId: `bench-${w}`, limit: batch, leaseSeconds: LEASE_SECONDS });
      if (jobs.length === 0) return;
      const { lost } = await completeJobs(
        client,
        jobs.map((j) => ({ id: j.id, token: j.leaseToken, result: NOOP_RESULT })),
      );
      if (lost.length > 0) throw new Error(`${lost.length} leases lost during the benchmark`);
      done += jobs.length;
    }
  });
  return done;
}

/**
 * The processor's loop: each call completes the batch before and claims the next one in
 * the same statement (one commit per batch), until a claim comes back empty.
 */
async function drainQueueCombined(workers: PoolClient[], batch: number): Promise<number> {
  let done = 0;
  await inParallel(workers, async (client, w) => {
    let held: ClaimedJob[] = [];
    do {
      const { completed, claimed } = await completeAndClaimJobs(
        client,
        held.map((j) => ({ id: j.id, token: j.leaseToken, result: NOOP_RESULT })),
        { workerId: `bench-${w}`, limit: batch, leaseSeconds: LEASE_SECONDS },
      );
      if (completed.lost.length > 0) throw new Error(`${completed.lost.length} leases lost during the benchmark`);
      done += completed.extended.length;
      held = claimed;
    } while (held.length > 0);
  });
  return done;
}

/** Untimed: fills the queue, then vacuums so every run starts from the same settled table. */
async function prefillQueue(pool: Pool, jobs: number): Promise<void> {
  await withClients(pool, 2, (clients) => enqueueBatches(clients, batchesOf(jobs, 1000)));
  await pool.query('VACUUM ANALYZE summary_jobs');
}

// ---------------------------------------------------------------------------
// The bare baseline: the least a SKIP LOCKED queue can do, with no leases, no tenants, no history indexes.

const BARE_SETUP_SQL = `
CREATE TABLE bench_bare (id bigserial PRIMARY KEY, status smallint NOT NULL DEFAULT 0, payload jsonb NOT NULL);
CREATE INDEX bench_bare_queued ON bench_bare (id) WHERE status = 0;
`;

const BARE_FILL_SQL = `
INSERT INTO bench_bare (payload)
SELECT jsonb_build_object('contentType', 'text/plain', 'filename', 'doc-' || g || '.txt')
FROM generate_series(1, $1::int) g
`;

// The payload comes back, as a handler needs it.
const BARE_CLAIM_SQL = `
UPDATE bench_bare SET status = 1
WHERE id IN (SELECT id FROM bench_bare WHERE status = 0 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING id, payload
`;

const BARE_FINISH_SQL = {
  update: 'UPDATE bench_bare SET status = 2 WHERE id = ANY($1::bigint[])',
  delete: 'DELETE FROM bench_bare WHERE id = ANY($1::bigint[])',
} as const;

async function prepareBare(pool: Pool, rows: number): Promise<void> {
  await pool.query(BARE_SETUP_SQL);
  await pool.query(BARE_FILL_SQL, [rows]);
  await pool.query('VACUUM ANALYZE bench_bare');
}

async function drainBare(workers: PoolClient[], batch: number, finish: keyof typeof BARE_FINISH_SQL): Promise<number> {
  let done = 0;
  await inParallel(workers, async (client) => {
    for (;;) {
      const { rows } = await client.query<{ id: string }>(BARE_CLAIM_SQL, [batch]);
      if (rows.length === 0) return;
      await client.query(BARE_FINISH_SQL[finish], [rows.map((r) => r.id)]);
      done += rows.length;
    }
  });
  return done;
}

// ---------------------------------------------------------------------------
// Scenario 1: batch enqueue

async function benchEnqueue(server: Server, sizes: Sizes): Promise<Throughput[]> {
  log('enqueue');
  const results: Throughput[] = [];
  for (const batch of [1000, 100]) {
    for (const connections of [1, 4]) {
      const batches = batchesOf(sizes.enqueueJobs, batch);
      const label = `batch ${batch}, ${connections} conn`;
      results.push(
        await withFreshDatabase(server, connections, ({ pool }) =>
          withClients(pool, connections, (clients) => measure('enqueue', label, clients, () => enqueueBatches(clients, batches))),
        ),
      );
    }
  }
  for (const r of results) r.note = 'target >= 100,000 jobs/s';
  return results;
}

// ---------------------------------------------------------------------------
// Scenario 2: claim + complete, and the bare baseline

const CLAIM_CASES: Array<{ batch: 1 | 10 | 100; workers: number }> = [
  { batch: 1, workers: 1 },
  { batch: 1, workers: 4 },
  { batch: 10, workers: 1 },
  { batch: 10, workers: 4 },
  { batch: 100, workers: 1 },
  { batch: 100, workers: 4 },
];

const claimLabel = (batch: number, workers: number) => `B=${batch} W=${workers}`;
const combinedLabel = (batch: number, workers: number) => `completeAndClaimJobs ${claimLabel(batch, workers)}`;

async function benchClaimCase(
  server: Server,
  sizes: Sizes,
  batch: 1 | 10 | 100,
  workers: number,
  combined = false,
): Promise<Throughput> {
  return withFreshDatabase(server, Math.max(workers, 4), async ({ pool }) => {
    await prefillQueue(pool, sizes.claimJobs[batch]);
    const label = combined ? combinedLabel(batch, workers) : claimLabel(batch, workers);
    const drain = combined ? drainQueueCombined : drainQueue;
    return withClients(pool, workers, (clients) => measure('claim', label, clients, () => drain(clients, batch)));
  });
}

async function benchBare(server: Server, sizes: Sizes, finish: keyof typeof BARE_FINISH_SQL): Promise<Throughput> {
  return withFreshDatabase(server, 4, async ({ pool }) => {
    await prepareBare(pool, sizes.claimJobs[100]);
    return withClients(pool, 4, (clients) =>
      measure('claim', `bare B=100 W=4 (${finish})`, clients, () => drainBare(clients, 100, finish)),
    );
  });
}

async function benchClaim(server: Server, sizes: Sizes): Promise<Throughput[]> {
  log('claim + complete');
  const ours: Throughput[] = [];
  for (const { batch, workers } of CLAIM_CASES) ours.push(await benchClaimCase(server, sizes, batch, workers));
  // What the processor runs: it completes a batch and claims the next in one statement.
  for (const batch of [1, 100] as const) ours.push(await benchClaimCase(server, sizes, batch, 4, true));
  const bareUpdate = await benchBare(server, sizes, 'update');
  const bareDelete = await benchBare(server, sizes, 'delete');
  const headline = ours.find((r) => r.case === claimLabel(100, 4))!;
  headline.note =
    `target >= 40,000; ${(headline.jobsPerSecond / bareUpdate.jobsPerSecond).toFixed(2)}x bare (update), ` +
    `${(headline.jobsPerSecond / bareDelete.jobsPerSecond).toFixed(2)}x bare (delete)`;
  bareUpdate.note = 'baseline: claim then UPDATE status = done';
  bareDelete.note = 'baseline: claim then DELETE';
  return [...ours, bareUpdate, bareDelete];
}

// ---------------------------------------------------------------------------
// Scenario: the processor as users run it

/** The database's committed transactions so far; other backends' counts arrive when they go idle or exit. */
async function commitsSoFar(pool: Pool): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await client.query<{ n: string }>('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()');
    return Number(rows[0]!.n);
  } finally {
    client.release();
  }
}

async function benchProcessorCase(server: Server, sizes: Sizes, mode: 'fair' | 'priority'): Promise<Throughput> {
  return withFreshDatabase(server, 2, async ({ pool, url }) => {
    const jobs = sizes.claimJobs[100];
    await prefillQueue(pool, jobs);
    const invocations = 4;
    // What a processor Lambda gets from the environment, with only the connection and the claim mode set.
    // BENCH_BATCH_SIZE, BENCH_FLUSH_DELAY_MS: the same run with another BATCH_SIZE or FLUSH_DELAY_MS, for comparison.
    const env = { DATABASE_URL: url, CLAIM_MODE: mode, BATCH_SIZE: process.env.BENCH_BATCH_SIZE, FLUSH_DELAY_MS: process.env.BENCH_FLUSH_DELAY_MS };
    // BENCH_JOB_MS: a job that takes this long (a timer, no CPU) instead of none.
    const jobMs = Number(process.env.BENCH_JOB_MS ?? 0);
    const work = jobMs > 0 ? () => new Promise<typeof NOOP_RESULT>((r) => setTimeout(() => r(NOOP_RESULT), jobMs)) : async () => NOOP_RESULT;
    const poolMax = databaseConfig(env).poolMax;
    // A name of their own, so the backends counted below are the invocations' only: the
    // bench's pool, which filled the queue, also lives on (it was counted, ~10 pg us/job).
    const lambdaPool = { ...(await poolConfig(databaseConfig(env))), application_name: 'summary-jobs-bench-processor' };
    const config = processorConfig(env);
    const silent = new Logger({ serviceName: 'bench', logLevel: 'SILENT' });
    // Points are made and let go, as Powertools lets them go once published; keeping all of
    // them (RecordingMetrics) grew the heap by a point per job and slowed the collector.
    const discardMetrics = new ForwardingMetrics(() => undefined);
    const pools = Array.from({ length: invocations }, () => createPool(lambdaPool));
    const wal = await pool.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    await new Promise((r) => setTimeout(r, 1100));
    const commitsBefore = await commitsSoFar(pool);
    const nodeBefore = process.cpuUsage();
    const start = performance.now();
    const runs = await Promise.all(
      pools.map((p, i) =>
        runProcessor(
          { pool: p, config: { ...config, workerId: `bench-${i}` }, logger: silent, metrics: discardMetrics, work },
          { awsRequestId: `bench-${i}`, getRemainingTimeInMillis: () => 900_000 - (performance.now() - start) },
        ),
      ),
    );
    const seconds = (performance.now() - start) / 1000;
    const node = process.cpuUsage(nodeBefore);
    // The invocations' backends were all started by this run: all their CPU is the run's
    // (connection set-up included). Read before the pools end and the backends exit.
    const backends = await pool.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'summary-jobs-bench-processor' AND datname = current_database()",
    );
    const pgSeconds = backendsCpuSeconds(backends.rows.map((r) => r.pid));
    // Backends that exit report their counts; give the statistics a moment to take them in.
    await Promise.all(pools.map((p) => p.end()));
    await new Promise((r) => setTimeout(r, 1100));
    const commits = (await commitsSoFar(pool)) - commitsBefore - 1;
    const walBytes = Number(
      (await pool.query<{ b: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1)::bigint AS b', [wal.rows[0]!.lsn])).rows[0]!.b,
    );
    const completed = runs.reduce((n, r) => n + r.completed, 0);
    if (completed !== jobs) throw new Error(`the processor completed ${completed} of ${jobs} jobs`);
    const result: Throughput = {
      scenario: 'processor',
      case: `runProcessor x${invocations}, ${mode} claim, B=${config.batchSize} C=${config.concurrency} pool ${poolMax}${jobMs > 0 ? `, ${jobMs} ms jobs, flush delay ${config.flushDelayMs} ms` : ''}`,
      jobs,
      seconds,
      jobsPerSecond: jobs / seconds,
      walBytesPerJob: walBytes / jobs,
      nodeCpuUsPerJob: (node.user + node.system) / jobs,
      pgCpuUsPerJob: pgSeconds === null ? null : (pgSeconds * 1e6) / jobs,
      note: `${(commits / jobs).toFixed(3)} commits/job`,
    };
    log(`  ${result.case}: ${fmt(result.jobsPerSecond)} jobs/s, ${result.note}, CPU us/job node ${cpu(result.nodeCpuUsPerJob)} pg ${cpu(result.pgCpuUsPerJob)}`);
    return result;
  });
}

/**
 * Rounds of engine, fair, priority, one after the other, each processor figure taken as a
 * ratio to the engine of its own round, and the median ratio reported: this machine's speed
 * drifts over tens of seconds (the engine alone measured 21,000-29,600 jobs/s in one
 * hour), so a single pair's ratio ranged from 0.65 to 1.0 for the same code.
 */
async function benchProcessor(server: Server, sizes: Sizes): Promise<Throughput[]> {
  log('processor');
  const rounds = sizes.processorRounds;
  const rows: Throughput[] = [];
  const ratios: Record<'fair' | 'priority', number[]> = { fair: [], priority: [] };
  for (let round = 1; round <= rounds; round++) {
    const engine = { ...(await benchClaimCase(server, sizes, 100, 4, true)), scenario: 'processor' as const };
    engine.note = `the engine, round ${round} of ${rounds}`;
    rows.push(engine);
    for (const mode of ['fair', 'priority'] as const) {
      const r = await benchProcessorCase(server, sizes, mode);
      const ratio = r.jobsPerSecond / engine.jobsPerSecond;
      ratios[mode].push(ratio);
      r.note = `${r.note}; ${ratio.toFixed(2)}x the engine of round ${round}`;
      rows.push(r);
      log(`    ${mode}: ${ratio.toFixed(2)}x the engine of this round`);
    }
  }
  for (const mode of ['fair', 'priority'] as const) {
    const sorted = [...ratios[mode]].sort((x, y) => x - y);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    const summary = `median ${median.toFixed(2)}x engine over ${rounds} round(s), range ${sorted[0]!.toFixed(2)}-${sorted.at(-1)!.toFixed(2)} (target >= 0.7x, <= 0.1 commits/job)`;
    log(`  ${mode} claim: ${summary}`);
    const last = rows.filter((r) => r.case.includes(`${mode} claim`)).at(-1)!;
    last.note = `${last.note}; ${summary}`;
  }
  return rows;
}

// ---------------------------------------------------------------------------
// Scenario 3: batch 1 against pgbench

// The usual SKIP LOCKED micro-benchmark: one job per transaction, lock the oldest queued row and
// mark it done. It commits once per job; a real queue commits twice (the claim, then the outcome
// after the handler ran), so the second script does that too and is the like-for-like comparison.
const PGBENCH_SCRIPTS = {
  'pgbench, claim+done in 1 txn': `BEGIN;
SELECT id AS job_id FROM bench_bare WHERE status = 0 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED \\gset
UPDATE bench_bare SET status = 2 WHERE id = :job_id;
END;
`,
  'pgbench, claim, done: 2 txns': `UPDATE bench_bare SET status = 1
WHERE id = (SELECT id FROM bench_bare WHERE status = 0 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id AS job_id \\gset
UPDATE bench_bare SET status = 2 WHERE id = :job_id;
`,
} as const;

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function onPath(command: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${command}`], process.env).then(
    () => true,
    () => false,
  );
}

function pgbenchConnectionArgs(url: string): { args: string[]; env: NodeJS.ProcessEnv } {
  const u = new URL(url);
  const args = ['-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username || 'postgres')];
  const env = { ...process.env, ...(u.password ? { PGPASSWORD: decodeURIComponent(u.password) } : {}) };
  return { args: [...args, u.pathname.slice(1)], env };
}

/** Runs one pgbench script for sizes.pgbenchSeconds against a fresh, filled bench_bare. */
async function runPgbench(server: Server, sizes: Sizes, label: keyof typeof PGBENCH_SCRIPTS): Promise<Throughput> {
  return withFreshDatabase(server, 2, async ({ pool, url }) => {
    await prepareBare(pool, sizes.pgbenchRows);
    const dir = mkdtempSync(join(tmpdir(), 'summary-jobs-bench-'));
    const script = join(dir, 'claim.sql');
    writeFileSync(script, PGBENCH_SCRIPTS[label]);
    try {
      const { args, env } = pgbenchConnectionArgs(url);
      // Extended protocol, unnamed statements: what node-postgres sends.
      const argv = ['-n', '-c', '4', '-j', '2', '-T', String(sizes.pgbenchSeconds), '-M', 'extended', '-f', script, ...args];
      let output = '';
      const result = await withClients(pool, 1, (clients) =>
        measure('pgbench', label, clients, async () => {
          output = await run('pgbench', argv, env);
          return Number(/number of transactions actually processed: (\d+)/.exec(output)?.[1] ?? 0);
        }),
      );
      // pgbench's own rate leaves out its connection set-up; its CPU is not this process's.
      const tps = Number(/tps = ([\d.]+)/.exec(output)?.[1] ?? NaN);
      return { ...result, jobsPerSecond: tps, seconds: sizes.pgbenchSeconds, nodeCpuUsPerJob: null, pgCpuUsPerJob: null };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

// The same bare queue at batch 1 driven from Node over node-postgres (unnamed statements, one
// connection per worker, W=4), as our queue is: how much of pgbench's rate a Node client can
// reach at all on this machine, before any queue feature costs anything.
const NODE_BARE_B1_SQL = {
  // Mark the previous job done and claim the next in one statement: one commit per job.
  'bare from Node, B=1 W=4, 1 statement/job': `WITH done AS (UPDATE bench_bare SET status = 2 WHERE id = $1)
UPDATE bench_bare SET status = 1
WHERE id = (SELECT id FROM bench_bare WHERE status = 0 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id`,
  // pgbench's two-transaction script: claim, then done.
  'bare from Node, B=1 W=4, 2 statements/job': `UPDATE bench_bare SET status = 1
WHERE id = (SELECT id FROM bench_bare WHERE status = 0 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id`,
} as const;
const NODE_BARE_DONE_SQL = 'UPDATE bench_bare SET status = 2 WHERE id = $1';

async function benchNodeBare(server: Server, sizes: Sizes, label: keyof typeof NODE_BARE_B1_SQL): Promise<Throughput> {
  return withFreshDatabase(server, 4, async ({ pool }) => {
    await prepareBare(pool, sizes.pgbenchRows);
    const oneStatement = label === 'bare from Node, B=1 W=4, 1 statement/job';
    return withClients(pool, 4, (clients) =>
      measure('pgbench', label, clients, async () => {
        let done = 0;
        const until = performance.now() + sizes.pgbenchSeconds * 1000;
        await inParallel(clients, async (client) => {
          let previous: string | null = null;
          while (performance.now() < until) {
            const { rows }: { rows: Array<{ id: string }> } = await client.query(NODE_BARE_B1_SQL[label], oneStatement ? [previous] : []);
            if (rows.length === 0) return;
            if (oneStatement) previous = rows[0]!.id;
            else await client.query(NODE_BARE_DONE_SQL, [rows[0]!.id]);
            done += 1;
          }
        });
        return done;
      }),
    );
  });
}

async function benchPgbench(server: Server, sizes: Sizes, claimed: Throughput[]): Promise<Throughput[]> {
  log('pgbench');
  // Ours at batch 1, from the claim scenario of this run, or measured here when it did not run.
  const extra: Throughput[] = [];
  let twoStatements = claimed.find((t) => t.case === claimLabel(1, 4));
  let oneStatement = claimed.find((t) => t.case === combinedLabel(1, 4));
  if (!twoStatements) extra.push((twoStatements = await benchClaimCase(server, sizes, 1, 4)));
  if (!oneStatement) extra.push((oneStatement = await benchClaimCase(server, sizes, 1, 4, true)));
  const nodeOne = await benchNodeBare(server, sizes, 'bare from Node, B=1 W=4, 1 statement/job');
  const nodeTwo = await benchNodeBare(server, sizes, 'bare from Node, B=1 W=4, 2 statements/job');
  const x = (a: Throughput, b: Throughput) => `${(a.jobsPerSecond / b.jobsPerSecond).toFixed(2)}x`;
  if (!(await onPath('pgbench'))) {
    log('  pgbench is not on PATH: skipped');
    nodeOne.note = `completeAndClaimJobs B=1 W=4 = ${x(oneStatement, nodeOne)}`;
    nodeTwo.note = `claim+complete B=1 W=4 = ${x(twoStatements, nodeTwo)}`;
    return [...extra, nodeOne, nodeTwo];
  }
  const oneTxn = await runPgbench(server, sizes, 'pgbench, claim+done in 1 txn');
  const twoTxns = await runPgbench(server, sizes, 'pgbench, claim, done: 2 txns');
  oneTxn.note =
    `target: ours B=1 >= 0.80x. completeAndClaimJobs B=1 W=4 (${fmt(oneStatement.jobsPerSecond)}) = ${x(oneStatement, oneTxn)}, ` +
    `claim+complete B=1 W=4 (${fmt(twoStatements.jobsPerSecond)}) = ${x(twoStatements, oneTxn)}`;
  twoTxns.note = `claim+complete B=1 W=4 = ${x(twoStatements, twoTxns)}: the same commits per job`;
  nodeOne.note = `${x(nodeOne, oneTxn)} pgbench 1 txn; completeAndClaimJobs B=1 W=4 = ${x(oneStatement, nodeOne)} of this`;
  nodeTwo.note = `${x(nodeTwo, twoTxns)} pgbench 2 txns; claim+complete B=1 W=4 = ${x(twoStatements, nodeTwo)} of this`;
  return [...extra, oneTxn, twoTxns, nodeOne, nodeTwo];
}

// ---------------------------------------------------------------------------
// Scenario 4: statistics and claim latency over a long history

// Finished jobs spread evenly over the past 30 days, oldest first, with UUIDv7 ids built
// from their creation time (so the id indexes grow in order, as with real traffic):
// 95% completed, 5% failed. Inserted in SQL: through the API this would take minutes.
const HISTORY_SQL = `
INSERT INTO summary_jobs (id, client_id, payload, status, attempts, run_at, created_at, updated_at,
                          started_at, finished_at, result, last_error, progress_percent)
SELECT encode(set_byte(u.b, 6, (get_byte(u.b, 6) & 15) | 112), 'hex')::uuid,
       ($2::uuid[])[1 + g % 10],
       jsonb_build_object('contentType', 'text/plain', 'filename', 'old-' || g || '.txt'),
       CASE WHEN t.failed THEN 'failed' ELSE 'completed' END,
       CASE WHEN t.failed THEN 5 ELSE 1 END,
       t.at, t.at, t.at + interval '3 seconds', t.at + interval '1 second', t.at + interval '3 seconds',
       CASE WHEN t.failed THEN NULL ELSE '{"summary": "ok"}'::jsonb END,
       CASE WHEN t.failed THEN 'summarizer timed out' END,
       CASE WHEN t.failed THEN NULL ELSE 100 END
FROM generate_series(1, $1::int) g
CROSS JOIN LATERAL (SELECT now() - interval '30 days' * (1 - g::float8 / $1) - interval '1 minute' AS at,
                           g % 20 = 0 AS failed) t
CROSS JOIN LATERAL (SELECT overlay(uuid_send(gen_random_uuid())
                           PLACING substring(int8send((extract(epoch FROM t.at) * 1000)::int8) FROM 3) FROM 1 FOR 6) AS b) u
`;

async function benchStats(server: Server, sizes: Sizes): Promise<Latency[]> {
  const total = sizes.historyRows;
  const history = total - sizes.queuedRows - sizes.runningRows;
  log(`stats with ${fmt(total)} rows`);
  return withFreshDatabase(server, 2, async ({ pool }) => {
    let start = performance.now();
    await pool.query(HISTORY_SQL, [history, CLIENT_IDS]);
    await withClients(pool, 2, (clients) => enqueueBatches(clients, batchesOf(sizes.queuedRows + sizes.runningRows, 1000)));
    await claimJobs(pool, { workerId: 'bench-holder', limit: sizes.runningRows, leaseSeconds: 3600 });
    log(`  seeded in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    start = performance.now();
    await pool.query('VACUUM ANALYZE summary_jobs');
    log(`  VACUUM ANALYZE in ${((performance.now() - start) / 1000).toFixed(1)} s`);

    const n = sizes.latencySamples;
    const rows = `${fmt(total)} rows`;
    const results = [
      await latencies('stats', `queueStats() 1 h window, ${rows}`, n, () => queueStats(pool)),
      await latencies('stats', `queueStats() 24 h window, ${rows}`, n, () => queueStats(pool, { windowSeconds: 86_400 })),
      await latencies('stats', `queueStats() one client, 1 h, ${rows}`, n, () => queueStats(pool, { clientId: CLIENT_IDS[0] })),
      await latencies('stats', `claimJobs(100) + completeJobs, ${rows}`, n, async () => {
        const jobs = await claimJobs(pool, { workerId: 'bench', limit: 100, leaseSeconds: LEASE_SECONDS });
        await completeJobs(pool, jobs.map((j) => ({ id: j.id, token: j.leaseToken, result: NOOP_RESULT })));
      }),
    ];
    return results;
  });
}

// ---------------------------------------------------------------------------
// Scenario 5: fairness and rate limits (bin/bench-fairness.ts)

async function benchFairness(server: Server, sizes: Sizes): Promise<{ throughput: Throughput[]; starts: StartRow[] }> {
  log('fairness');
  // Its workers share the pool: room for all four and a rate-limit transaction.
  const poolMax = 6;
  const modes = await withFreshDatabases(server, poolMax, (fresh) => claimThroughput(fresh, sizes.fairnessJobs));
  const throughput = modes.map((m): Throughput => {
    log(`  ${m.mode}: ${fmt(m.jobsPerSecond)} jobs/s`);
    return {
      scenario: 'fairness',
      case: `${m.mode}, completeAndClaim B=100 W=4`,
      jobs: m.jobs,
      seconds: m.seconds,
      jobsPerSecond: m.jobsPerSecond,
      walBytesPerJob: null,
      nodeCpuUsPerJob: null,
      pgCpuUsPerJob: null,
    };
  });
  const starts = await withFreshDatabases(server, poolMax, (fresh) => smallClientStart(fresh, sizes.fairnessBacklog));
  for (const r of starts) log(`  small client start, ${r.mode}: p50 ${r.p50Ms} ms, max ${r.maxMs} ms`);
  return { throughput, starts };
}

// ---------------------------------------------------------------------------
// Machine

async function describeMachine(server: Server): Promise<Record<string, string | number>> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const client = new Client({ connectionString: server.adminUrl });
  await client.connect();
  try {
    const setting = async (name: string) => (await client.query(`SHOW ${name}`)).rows[0][name] as string;
    return {
      cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
      cores: cpus().length,
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      node: process.version,
      postgres: await setting('server_version'),
      server: server.source,
      fsync: await setting('fsync'),
      synchronous_commit: await setting('synchronous_commit'),
      full_page_writes: await setting('full_page_writes'),
      shared_buffers: await setting('shared_buffers'),
    };
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------
// Output

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const cpu = (us: number | null) => (us === null ? '-' : us < 100 ? us.toFixed(1) : fmt(us));

function table(headers: string[], rows: string[][], rightAligned: Set<number>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function printResults(results: Results): void {
  const out: string[] = [];
  out.push(Object.entries(results.machine).map(([k, v]) => `${k}: ${v}`).join('\n'), '');
  if (results.throughput.length > 0) {
    out.push(
      table(
        ['scenario', 'case', 'jobs', 'seconds', 'jobs/s', 'WAL B/job', 'node CPU us/job', 'pg CPU us/job', 'note'],
        results.throughput.map((r) => [
          r.scenario,
          r.case,
          fmt(r.jobs),
          r.seconds.toFixed(2),
          fmt(r.jobsPerSecond),
          r.walBytesPerJob === null ? '-' : fmt(r.walBytesPerJob),
          cpu(r.nodeCpuUsPerJob),
          cpu(r.pgCpuUsPerJob),
          r.note ?? '',
        ]),
        new Set([2, 3, 4, 5, 6, 7]),
      ),
      '',
    );
  }
  if (results.latency.length > 0) {
    out.push(
      table(
        ['scenario', 'case', 'calls', 'p50 ms', 'p95 ms'],
        results.latency.map((r) => [r.scenario, r.case, String(r.samples), r.p50Ms.toFixed(2), r.p95Ms.toFixed(2)]),
        new Set([2, 3, 4]),
      ),
      '',
    );
  }
  if (results.smallClientStart.length > 0) {
    out.push(
      table(
        ['fairness: a small client\'s jobs behind a big backlog', 'backlog', 'jobs', 'start p50 ms', 'start max ms', 'backlog left'],
        results.smallClientStart.map((r) => [
          `${r.mode} claim`,
          fmt(r.backlog),
          String(r.smallJobs),
          fmt(r.p50Ms),
          fmt(r.maxMs),
          fmt(r.backlogLeftWhenSmallDone),
        ]),
        new Set([1, 2, 3, 4, 5]),
      ),
      '',
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------

class UsageError extends Error {
  override name = 'UsageError';
}

function parseOptions(): { sizes: Sizes; only: Scenario | undefined; json: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, json: { type: 'boolean', default: false } },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const only = values.only as Scenario | undefined;
  if (only !== undefined && !SCENARIOS.includes(only)) {
    throw new UsageError(`--only must be one of ${SCENARIOS.join(', ')}`);
  }
  return { sizes: values.quick ? QUICK : FULL, only, json: Boolean(values.json) };
}

async function main(): Promise<void> {
  // The pipeline scenario has options of its own (--repo=, --rounds=, ...): it parses them itself.
  const args = process.argv.slice(2);
  if (args.includes('--only=pipeline')) {
    await benchPipeline(args.filter((a) => a !== '--only=pipeline'));
    return;
  }
  const { sizes, only, json } = parseOptions();
  const wanted = (s: Scenario) => only === undefined || only === s;
  const server = await findServer(log);
  const stopOnSignal = async () => {
    log('interrupted: dropping the benchmark databases');
    for (const name of liveDatabases) await adminQuery(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await server.stop().catch(() => undefined);
    process.exit(130);
  };
  process.once('SIGINT', () => void stopOnSignal());
  process.once('SIGTERM', () => void stopOnSignal());
  try {
    const results: Results = { machine: await describeMachine(server), throughput: [], latency: [], smallClientStart: [] };
    const started = performance.now();
    if (wanted('enqueue')) results.throughput.push(...(await benchEnqueue(server, sizes)));
    if (wanted('claim')) results.throughput.push(...(await benchClaim(server, sizes)));
    if (wanted('processor')) results.throughput.push(...(await benchProcessor(server, sizes)));
    if (wanted('pgbench')) {
      const claimed = results.throughput.filter((r) => r.scenario === 'claim');
      results.throughput.push(...(await benchPgbench(server, sizes, claimed)));
    }
    if (wanted('stats')) results.latency.push(...(await benchStats(server, sizes)));
    if (wanted('fairness')) {
      const { throughput, starts } = await benchFairness(server, sizes);
      results.throughput.push(...throughput);
      results.smallClientStart.push(...starts);
    }
    results.machine.benchSeconds = Math.round((performance.now() - started) / 1000);
    if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    else printResults(results);
  } finally {
    await server.stop();
  }
  // Last, on a server of its own: local mode end to end (it prints its own table).
  if (wanted('pipeline')) await benchPipeline([...(sizes === QUICK ? ['--quick'] : []), ...(json ? ['--json'] : [])]);
}

main().catch((err) => {
  if (err instanceof UsageError) console.error(`${err.message}\nusage: npm run bench [-- --quick] [--only=${SCENARIOS.join('|')}] [--json]`);
  else console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
