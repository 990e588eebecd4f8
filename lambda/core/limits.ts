import type { Pool } from 'pg';
import type { Db } from './db';
import { completeAndClaimJobs, type ClaimOptions, type ClaimedJob, type Completion, type LeaseCheck } from './queue';

/**
 * Rate limits per client and per job type, kept in the rate_limits table and
 * enforced inside the fair claim (summary_jobs_complete_and_claim, migration
 * 005, replaced in 006 and 007; what each limit still allows:
 * summary_jobs_rate_allowances). While any limit exists, claimers take the
 * limit rows' locks first, so
 * they take turns: each one counts what is running and what was started in the
 * window after the previous one committed, and no number of concurrent
 * processors can overshoot a limit.
 */

export type LimitScope = 'client' | 'job_type';

export interface RateLimit {
  scope: LimitScope;
  key: string;
  maxPerInterval: number | null;
  intervalSeconds: number;
  maxRunning: number | null;
}

interface LimitRow {
  scope: LimitScope;
  key: string;
  max_per_interval: number | null;
  interval_seconds: number;
  max_running: number | null;
}

export async function setRateLimit(db: Db, limit: RateLimit): Promise<void> {
  await db.query(
    `INSERT INTO rate_limits (scope, key, max_per_interval, interval_seconds, max_running)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (scope, key) DO UPDATE SET max_per_interval = excluded.max_per_interval,
       interval_seconds = excluded.interval_seconds, max_running = excluded.max_running, updated_at = now()`,
    [limit.scope, limit.key, limit.maxPerInterval, limit.intervalSeconds, limit.maxRunning],
  );
}

export async function deleteRateLimit(db: Db, scope: LimitScope, key: string): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM rate_limits WHERE scope = $1 AND key = $2`, [scope, key]);
  return rowCount === 1;
}

export async function listRateLimits(db: Db): Promise<RateLimit[]> {
  const { rows } = await db.query<LimitRow>(
    `SELECT scope, key, max_per_interval, interval_seconds, max_running FROM rate_limits ORDER BY scope, key`,
  );
  return rows.map((r) => ({
    scope: r.scope,
    key: r.key,
    maxPerInterval: r.max_per_interval,
    intervalSeconds: r.interval_seconds,
    maxRunning: r.max_running,
  }));
}

/** Claims fairly across clients, within the rate limits in force. */
export async function claimFairJobs(pool: Pool, opts: ClaimOptions): Promise<ClaimedJob[]> {
  return (await completeAndClaimFair(pool, [], opts)).claimed;
}

/**
 * Completes the given jobs and claims more, fairly and within the limits, in
 * one call: one commit for both. Completing first frees their slots.
 */
export async function completeAndClaimFair(
  pool: Pool,
  completions: Completion[],
  opts: ClaimOptions,
): Promise<{ completed: LeaseCheck; claimed: ClaimedJob[] }> {
  return completeAndClaimJobs(pool, completions, opts, 'fair');
}
