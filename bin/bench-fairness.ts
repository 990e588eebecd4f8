/**
 * Scenarios for fairness and rate limits, used by `npm run bench` (bin/bench.ts):
 *
 *   claimThroughput   jobs/s of claim + complete (B=100, W=4, no-op handler) with the strict
 *                     priority claim, the fair claim, and the fair claim with a rate limit in force
 *                     (which makes claimers take the limit rows' locks in turn), in one run
 *   smallClientStart  a client with 100,000 queued jobs and one that submits 10 while the backlog
 *                     drains: time from the small client's enqueue to the start of its jobs, with
 *                     the fair claim and with the strict priority claim
 *
 * Each function gets a fresh, migrated database (a pool on it) from the caller.
 */
import { performance } from 'node:perf_hooks';
import type { Pool } from 'pg';
import { uuidv7 } from '../lambda/core/ids';
import { completeAndClaimFair, setRateLimit } from '../lambda/core/limits';
import { completeAndClaimJobs, completeJobs, enqueueJobs, type ClaimedJob, type Completion } from '../lambda/core/queue';

type Claimer = (pool: Pool, completions: Completion[], workerId: string) => Promise<ClaimedJob[]>;

const BATCH = 100;
const WORKERS = 4;

const claimers: Record<'priority' | 'fair', Claimer> = {
  priority: async (pool, completions, workerId) =>
    (await completeAndClaimJobs(pool, completions, { workerId, limit: BATCH, leaseSeconds: 60 })).claimed,
  fair: async (pool, completions, workerId) =>
    (await completeAndClaimFair(pool, completions, { workerId, limit: BATCH, leaseSeconds: 60 })).claimed,
};

async function enqueueMany(pool: Pool, clientIds: string[], total: number): Promise<void> {
  for (let done = 0; done < total; done += 1000) {
    const n = Math.min(1000, total - done);
    await enqueueJobs(pool, Array.from({ length: n }, (_, i) => ({ clientId: clientIds[(done + i) % clientIds.length]! })));
  }
}

/** W workers, each completing its last batch and claiming the next in one call, until `stop()` or the queue is empty. */
async function drain(
  pool: Pool,
  claim: Claimer,
  stop: () => boolean = () => false,
  onClaimed: (jobs: ClaimedJob[]) => void = () => undefined,
): Promise<number> {
  let jobs = 0;
  await Promise.all(
    Array.from({ length: WORKERS }, async (_, w) => {
      let held: ClaimedJob[] = [];
      for (;;) {
        const completions = held.map((j) => ({ id: j.id, token: j.leaseToken, result: {} }));
        jobs += completions.length;
        if (stop()) {
          await completeJobs(pool, completions);
          return;
        }
        held = await claim(pool, completions, `bench-${w}`);
        onClaimed(held);
        if (held.length === 0) return;
      }
    }),
  );
  return jobs;
}

export interface ThroughputRow {
  mode: 'priority' | 'fair' | 'fair + rate limit';
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
}

export async function claimThroughput(fresh: () => Promise<Pool>, total: number): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  const clients = Array.from({ length: 10 }, () => uuidv7());
  for (const mode of ['priority', 'fair', 'fair + rate limit'] as const) {
    const pool = await fresh();
    await enqueueMany(pool, clients, total);
    await pool.query('VACUUM ANALYZE summary_jobs');
    if (mode === 'fair + rate limit') {
      // High enough never to hold anything back: this measures the cost of enforcing it.
      await setRateLimit(pool, { scope: 'job_type', key: 'summarize', maxPerInterval: 10_000_000, intervalSeconds: 60, maxRunning: 100_000 });
    }
    const t0 = performance.now();
    const jobs = await drain(pool, claimers[mode === 'priority' ? 'priority' : 'fair']);
    const seconds = (performance.now() - t0) / 1000;
    rows.push({ mode, jobs, seconds, jobsPerSecond: Math.round(jobs / seconds) });
  }
  return rows;
}

export interface StartRow {
  mode: 'priority' | 'fair';
  backlog: number;
  smallJobs: number;
  p50Ms: number;
  maxMs: number;
  backlogLeftWhenSmallDone: number;
}

/**
 * The big client's backlog is queued first; once the workers are draining it,
 * the small client submits its jobs. Time-to-start runs from just before the
 * small client's enqueue is sent to the moment a worker's claim of the job returns.
 */
export async function smallClientStart(fresh: () => Promise<Pool>, backlog: number, smallJobs = 10): Promise<StartRow[]> {
  const rows: StartRow[] = [];
  for (const mode of ['fair', 'priority'] as const) {
    const pool = await fresh();
    const big = uuidv7();
    const small = uuidv7();
    await enqueueMany(pool, [big], backlog);
    await pool.query('VACUUM ANALYZE summary_jobs');
    const startedAt = new Map<string, number>();
    let bigLeftWhenSmallDone = -1;
    let claimedBig = 0;
    const draining = drain(
      pool,
      claimers[mode],
      () => startedAt.size === smallJobs,
      (jobs) => {
        const now = performance.now();
        for (const j of jobs) {
          if (j.clientId === small) startedAt.set(j.id, now);
          else claimedBig += 1;
        }
        if (startedAt.size === smallJobs && bigLeftWhenSmallDone < 0) bigLeftWhenSmallDone = backlog - claimedBig;
      },
    );
    // Let the workers get going on the backlog, then submit the small client's jobs.
    await new Promise((r) => setTimeout(r, 300));
    const submitted = performance.now();
    await enqueueJobs(pool, Array.from({ length: smallJobs }, () => ({ clientId: small })));
    await draining;
    const ms = [...startedAt.values()].map((t) => t - submitted).sort((a, b) => a - b);
    rows.push({
      mode,
      backlog,
      smallJobs,
      p50Ms: Math.round(ms[Math.floor(ms.length / 2)]!),
      maxMs: Math.round(ms[ms.length - 1]!),
      backlogLeftWhenSmallDone: bigLeftWhenSmallDone,
    });
  }
  return rows;
}
