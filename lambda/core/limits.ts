import type { Pool } from 'pg';
import type { Db } from './db';
import { claimFairBatch, completeJobs, type ClaimAllowance, type ClaimOptions, type ClaimedJob, type Completion, type LeaseCheck } from './queue';

/**
 * Rate limits per client and per job type, kept in the rate_limits table and
 * enforced inside the claim. While any limit exists, claimers take the limit
 * rows' locks first, so they take turns: each one counts what is running and
 * what was started in the window after the previous one committed, and no
 * number of concurrent processors can overshoot a limit.
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
  started_in_window: number;
  window_current: boolean;
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

function allowanceOf(limits: LimitRow[], running: Map<string, number>): ClaimAllowance {
  const allowance: ClaimAllowance = { clients: new Map(), jobTypes: new Map() };
  for (const l of limits) {
    let left = Number.POSITIVE_INFINITY;
    if (l.max_per_interval !== null) left = Math.min(left, l.max_per_interval - (l.window_current ? l.started_in_window : 0));
    if (l.max_running !== null) left = Math.min(left, l.max_running - (running.get(`${l.scope}:${l.key}`) ?? 0));
    if (left === Number.POSITIVE_INFINITY) continue;
    (l.scope === 'client' ? allowance.clients : allowance.jobTypes).set(l.key, Math.max(0, left));
  }
  return allowance;
}

/** Claims fairly across clients, within the rate limits in force. */
export async function claimFairJobs(pool: Pool, opts: ClaimOptions): Promise<ClaimedJob[]> {
  return (await completeAndClaimFair(pool, [], opts)).claimed;
}

/**
 * Completes the given jobs and claims more, fairly and within the limits, in
 * one transaction: one commit for both. Completing first frees their slots.
 */
export async function completeAndClaimFair(
  pool: Pool,
  completions: Completion[],
  opts: ClaimOptions,
): Promise<{ completed: LeaseCheck; claimed: ClaimedJob[] }> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // Transaction-scoped: nothing outlives the claim (and RDS Proxy does not pin for SET LOCAL).
    await client.query('SET LOCAL jit = off');
    const completed = await completeJobs(client, completions);
    const { rows: limits } = await client.query<LimitRow>(
      `SELECT scope, key, max_per_interval, interval_seconds, max_running, started_in_window,
              window_start + interval_seconds * interval '1 second' > now() AS window_current
       FROM rate_limits ORDER BY scope, key FOR UPDATE`,
    );
    if (limits.length === 0) {
      const claimed = await claimFairBatch(client, opts);
      await client.query('COMMIT');
      return { completed, claimed };
    }
    const running = new Map<string, number>();
    if (limits.some((l) => l.max_running !== null)) {
      const { rows } = await client.query<{ k: string; n: number }>(
        `SELECT 'client:' || client_id AS k, count(*)::int AS n FROM summary_jobs WHERE status = 'running' GROUP BY client_id
         UNION ALL
         SELECT 'job_type:' || job_type, count(*)::int FROM summary_jobs WHERE status = 'running' GROUP BY job_type`,
      );
      for (const r of rows) running.set(r.k, r.n);
    }
    const jobs = await claimFairBatch(client, opts, allowanceOf(limits, running));
    // Count what this claim started against each limit's window.
    const started = new Map<string, number>();
    for (const j of jobs) {
      for (const k of [`client:${j.clientId}`, `job_type:${j.jobType}`]) started.set(k, (started.get(k) ?? 0) + 1);
    }
    const touched = limits.filter((l) => l.max_per_interval !== null && started.has(`${l.scope}:${l.key}`));
    if (touched.length > 0) {
      await client.query(
        `UPDATE rate_limits r
         SET started_in_window = CASE WHEN r.window_start + r.interval_seconds * interval '1 second' > now()
                                      THEN r.started_in_window + t.n ELSE t.n END,
             window_start = CASE WHEN r.window_start + r.interval_seconds * interval '1 second' > now()
                                 THEN r.window_start ELSE now() END
         FROM unnest($1::text[], $2::text[], $3::int4[]) AS t(scope, key, n)
         WHERE r.scope = t.scope AND r.key = t.key`,
        [touched.map((l) => l.scope), touched.map((l) => l.key), touched.map((l) => started.get(`${l.scope}:${l.key}`)!)],
      );
    }
    await client.query('COMMIT');
    return { completed, claimed: jobs };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
