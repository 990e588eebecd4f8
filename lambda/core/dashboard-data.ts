import type { Db } from './db';
import { queueStats, type QueueStats } from './queue';

/**
 * Everything the operator dashboard shows, in two statements: `queueStats`
 * (the counts, shared with GET /admin/stats) and one statement whose scalar
 * sub-selects each return one section as JSON. Every part reads through an
 * index of migrations 001-003, so its cost follows the backlog, the leases in
 * flight and the jobs finished inside the window, never the history the table
 * keeps:
 *
 *   series, breakdown, failures  summary_jobs_finished   (finished_at > now() - window)
 *   backlog per client/type      summary_jobs_runnable / summary_jobs_waiting
 *   running, stuck               summary_jobs_leases     (status = 'running')
 *   next in line                 summary_jobs_runnable   (claim order, LIMIT)
 *
 * A job retried by an operator loses its finished_at, so it leaves the
 * "failed in window" numbers as soon as it is queued again.
 */

export interface DashboardOptions {
  /** How far back finished jobs count, in minutes (1..1440). @default 60 */
  windowMinutes?: number;
  /** @default a link to the CloudWatch alarms console of AWS_REGION */
  alarms?: AlarmsView;
}

export interface MinutePoint {
  /** Start of the minute (ISO 8601). The first and the last minute are partial. */
  minute: string;
  completed: number;
  failed: number;
  cancelled: number;
  /** failed / (completed + failed) in that minute; null when nothing finished. */
  failureRate: number | null;
}

export interface StuckJob {
  id: string;
  clientId: string;
  clientName: string | null;
  jobType: string;
  leaseOwner: string | null;
  attempts: number;
  expiredForSeconds: number;
}

export interface Breakdown {
  /** All queued jobs: runnable, scheduled for later and waiting for dependencies. */
  queued: number;
  running: number;
  /** Finished within the window. */
  completed: number;
  failed: number;
  cancelled: number;
}

export interface ClientBreakdown extends Breakdown {
  clientId: string;
  clientName: string | null;
}

export interface JobTypeBreakdown extends Breakdown {
  jobType: string;
}

export interface FailedJob {
  id: string;
  clientId: string;
  clientName: string | null;
  jobType: string;
  attempts: number;
  maxAttempts: number;
  /** Cut to its first 2,000 characters. */
  lastError: string | null;
  finishedAt: string;
  /**
   * Whether POST /admin/jobs/{id}/retry can run it: false while one of the
   * jobs it depends on is not completed (retrying it would only fail it again).
   */
  retryable: boolean;
  /** The first dependency that is not completed, when there is one. */
  retryBlockedBy: string | null;
  /** Its failed attempts, oldest first (the last 10; each error cut to 500 characters). */
  attemptErrors: FailedAttempt[];
}

export interface FailedAttempt {
  at: string;
  attempt: number;
  error: string;
  /** Whether another attempt was allowed to follow. */
  retryable: boolean;
}

/** A rate limit and what it holds back now. */
export interface RateLimitStatus {
  scope: 'client' | 'job_type';
  key: string;
  /** The client's name for a client limit. */
  clientName: string | null;
  maxPerInterval: number | null;
  intervalSeconds: number;
  /** Jobs started in the current interval. */
  startedInInterval: number;
  maxRunning: number | null;
  running: number;
  /** Jobs that could run now (no run-at in the future, no dependency pending) in the limit's scope. */
  runnable: number;
  /** Runnable jobs the limit keeps from starting now: they wait for the limit, not for the processor. */
  held: number;
}

/** An alarm in ALARM. */
export interface FiringAlarm {
  alarm: string;
  /** When it entered ALARM (ISO 8601). */
  since: string;
  reason: string;
  description: string;
}

/**
 * Where the alarms' states come from: local mode evaluates the rules itself
 * and lists what fires; in AWS CloudWatch holds the states and the page links
 * to them.
 */
export type AlarmsView = { source: 'local'; firing: FiringAlarm[] } | { source: 'cloudwatch'; consoleUrl: string };

export interface NextJob {
  id: string;
  clientId: string;
  clientName: string | null;
  jobType: string;
  priority: number;
  runAt: string;
  waitingSeconds: number;
}

export interface DashboardData {
  generatedAt: string;
  windowMinutes: number;
  stats: QueueStats;
  /** failed / (completed + failed) over the window; null when nothing finished. */
  failureRate: number | null;
  series: MinutePoint[];
  stuckJobs: StuckJob[];
  clients: ClientBreakdown[];
  jobTypes: JobTypeBreakdown[];
  latestFailures: FailedJob[];
  /** The head of the runnable queue in claim order (strict priority). */
  nextJobs: NextJob[];
  rateLimits: RateLimitStatus[];
  /** Firing alarms (local mode) or where to see them (AWS). */
  alarms: AlarmsView;
}

const DASHBOARD_LIST_LIMIT = 20;
const NEXT_JOBS_LIMIT = 10;
const MAX_WINDOW_MINUTES = 1440;

export class DashboardOptionsError extends Error {
  override name = 'DashboardOptionsError';
}

// $1 = window in minutes, $2 = list limit, $3 = next-in-line limit.
// `recent` (finished inside the window) is read once for the series and the
// breakdowns. Every read repeats its index's predicate, so the planner can
// prove the partial index applies; the latest failures walk summary_jobs_finished
// backwards and stop after $2 rows.
const DASHBOARD_SQL = `
WITH recent AS MATERIALIZED (
  SELECT client_id, job_type, status, finished_at
  FROM summary_jobs
  WHERE finished_at > now() - $1 * interval '1 minute'
), live AS (
  SELECT client_id, job_type, 'queued' AS state FROM summary_jobs
  WHERE status = 'queued' AND pending_dependencies = 0
  UNION ALL
  SELECT client_id, job_type, 'queued' FROM summary_jobs
  WHERE status = 'queued' AND pending_dependencies > 0
  UNION ALL
  SELECT client_id, job_type, 'running' FROM summary_jobs
  WHERE status = 'running'
  UNION ALL
  SELECT client_id, job_type, status FROM recent
), counted AS (
  SELECT grouping(client_id) AS by_type, client_id, job_type,
         count(*) FILTER (WHERE state = 'queued')::int AS queued,
         count(*) FILTER (WHERE state = 'running')::int AS running,
         count(*) FILTER (WHERE state = 'completed')::int AS completed,
         count(*) FILTER (WHERE state = 'failed')::int AS failed,
         count(*) FILTER (WHERE state = 'cancelled')::int AS cancelled
  FROM live
  GROUP BY GROUPING SETS ((client_id), (job_type))
)
SELECT
  now() AS generated_at,
  (SELECT coalesce(json_agg(s ORDER BY s.minute), '[]')
   FROM (
     SELECT m.minute, coalesce(b.completed, 0) AS completed, coalesce(b.failed, 0) AS failed,
            coalesce(b.cancelled, 0) AS cancelled
     FROM generate_series(date_trunc('minute', now() - $1 * interval '1 minute'),
                          date_trunc('minute', now()), interval '1 minute') AS m(minute)
     LEFT JOIN (
       SELECT date_trunc('minute', finished_at) AS minute,
              count(*) FILTER (WHERE status = 'completed')::int AS completed,
              count(*) FILTER (WHERE status = 'failed')::int AS failed,
              count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled
       FROM recent
       GROUP BY 1
     ) b ON b.minute = m.minute
   ) s) AS series,
  (SELECT coalesce(json_agg(s ORDER BY s.expired_for_seconds DESC, s.id), '[]')
   FROM (
     SELECT j.id, j.client_id, c.name AS client_name, j.job_type, j.lease_owner, j.attempts,
            extract(epoch FROM now() - j.lease_expires_at)::float8 AS expired_for_seconds
     FROM summary_jobs j LEFT JOIN clients c ON c.id = j.client_id
     WHERE j.status = 'running' AND j.lease_expires_at < now()
     ORDER BY j.lease_expires_at
     LIMIT $2
   ) s) AS stuck_jobs,
  (SELECT coalesce(json_agg(s ORDER BY s.client_name, s.client_id), '[]')
   FROM (
     SELECT k.client_id, c.name AS client_name, k.queued, k.running, k.completed, k.failed, k.cancelled
     FROM counted k LEFT JOIN clients c ON c.id = k.client_id
     WHERE k.by_type = 0
   ) s) AS clients,
  (SELECT coalesce(json_agg(s ORDER BY s.job_type), '[]')
   FROM (
     SELECT k.job_type, k.queued, k.running, k.completed, k.failed, k.cancelled
     FROM counted k
     WHERE k.by_type = 1
   ) s) AS job_types,
  (SELECT coalesce(json_agg(s ORDER BY s.finished_at DESC, s.id DESC), '[]')
   FROM (
     SELECT f.id, f.client_id, c.name AS client_name, f.job_type, f.attempts, f.max_attempts,
            left(f.last_error, 2000) AS last_error, f.finished_at,
            (SELECT d.depends_on FROM job_dependencies d JOIN summary_jobs p ON p.id = d.depends_on
             WHERE d.job_id = f.id AND p.status <> 'completed'
             ORDER BY d.depends_on LIMIT 1) AS retry_blocked_by,
            (SELECT coalesce(json_agg(json_build_object('at', e->>'at', 'attempt', (e->>'attempt')::int,
                                                        'error', left(e->>'error', 500), 'retryable', (e->>'retryable')::boolean)
                                      ORDER BY x.n), '[]')
             FROM jsonb_array_elements(f.attempt_errors) WITH ORDINALITY AS x(e, n)
             WHERE x.n > jsonb_array_length(f.attempt_errors) - 10) AS attempt_errors
     FROM (
       SELECT id, client_id, job_type, attempts, max_attempts, last_error, finished_at, attempt_errors FROM summary_jobs
       WHERE finished_at > now() - $1 * interval '1 minute' AND status = 'failed'
       ORDER BY finished_at DESC, id DESC
       LIMIT $2
     ) f LEFT JOIN clients c ON c.id = f.client_id
   ) s) AS latest_failures,
  -- Per limit: its window's starts, and the running and runnable jobs of its
  -- scope (through summary_jobs_leases and summary_jobs_runnable).
  (SELECT coalesce(json_agg(s ORDER BY s.scope, s.client_name, s.key), '[]')
   FROM (
     SELECT l.scope, l.key, c.name AS client_name, l.max_per_interval, l.interval_seconds, l.max_running,
            CASE WHEN l.window_start + l.interval_seconds * interval '1 second' > now()
                 THEN l.started_in_window ELSE 0 END AS started_in_interval,
            (SELECT count(*)::int FROM summary_jobs r
             WHERE r.status = 'running'
               AND CASE l.scope WHEN 'client' THEN r.client_id::text = l.key ELSE r.job_type = l.key END) AS running,
            (SELECT count(*)::int FROM summary_jobs q
             WHERE q.status = 'queued' AND q.pending_dependencies = 0 AND q.run_at <= now()
               AND CASE l.scope WHEN 'client' THEN q.client_id::text = l.key ELSE q.job_type = l.key END) AS runnable
     FROM rate_limits l LEFT JOIN clients c ON l.scope = 'client' AND c.id::text = l.key
     ORDER BY l.scope, l.key
     LIMIT $2
   ) s) AS rate_limits,
  (SELECT coalesce(json_agg(s ORDER BY s.priority DESC, s.run_at, s.id), '[]')
   FROM (
     SELECT q.id, q.client_id, c.name AS client_name, q.job_type, q.priority, q.run_at,
            extract(epoch FROM now() - q.run_at)::float8 AS waiting_seconds
     FROM (
       SELECT id, client_id, job_type, priority, run_at FROM summary_jobs
       WHERE status = 'queued' AND pending_dependencies = 0 AND run_at <= now()
       ORDER BY priority DESC, run_at, id
       LIMIT $3
     ) q LEFT JOIN clients c ON c.id = q.client_id
   ) s) AS next_jobs
`;

interface DashboardRow {
  generated_at: Date;
  series: { minute: string; completed: number; failed: number; cancelled: number }[];
  stuck_jobs: {
    id: string;
    client_id: string;
    client_name: string | null;
    job_type: string;
    lease_owner: string | null;
    attempts: number;
    expired_for_seconds: number;
  }[];
  clients: ({ client_id: string; client_name: string | null } & Breakdown)[];
  job_types: ({ job_type: string } & Breakdown)[];
  latest_failures: {
    id: string;
    client_id: string;
    client_name: string | null;
    job_type: string;
    attempts: number;
    max_attempts: number;
    last_error: string | null;
    finished_at: string;
    retry_blocked_by: string | null;
    attempt_errors: FailedAttempt[];
  }[];
  rate_limits: {
    scope: 'client' | 'job_type';
    key: string;
    client_name: string | null;
    max_per_interval: number | null;
    interval_seconds: number;
    max_running: number | null;
    started_in_interval: number;
    running: number;
    runnable: number;
  }[];
  next_jobs: {
    id: string;
    client_id: string;
    client_name: string | null;
    job_type: string;
    priority: number;
    run_at: string;
    waiting_seconds: number;
  }[];
}

const iso = (timestamp: string) => new Date(timestamp).toISOString();
const seconds = (value: number) => Math.round(value * 1000) / 1000;
const rate = (failed: number, completed: number) => (failed + completed === 0 ? null : failed / (failed + completed));
const counts = (b: Breakdown): Breakdown => ({
  queued: b.queued,
  running: b.running,
  completed: b.completed,
  failed: b.failed,
  cancelled: b.cancelled,
});

export async function dashboardData(db: Db, opts: DashboardOptions = {}): Promise<DashboardData> {
  const windowMinutes = opts.windowMinutes ?? 60;
  if (!Number.isInteger(windowMinutes) || windowMinutes < 1 || windowMinutes > MAX_WINDOW_MINUTES) {
    throw new DashboardOptionsError(`windowMinutes must be a whole number from 1 to ${MAX_WINDOW_MINUTES}; got ${String(opts.windowMinutes)}`);
  }
  const [stats, { rows }] = await Promise.all([
    queueStats(db, { windowSeconds: windowMinutes * 60 }),
    db.query<DashboardRow>(DASHBOARD_SQL, [windowMinutes, DASHBOARD_LIST_LIMIT, NEXT_JOBS_LIMIT]),
  ]);
  const r = rows[0]!;
  return {
    generatedAt: r.generated_at.toISOString(),
    windowMinutes,
    stats,
    failureRate: rate(stats.failed, stats.completed),
    series: r.series.map((p) => ({
      minute: iso(p.minute),
      completed: p.completed,
      failed: p.failed,
      cancelled: p.cancelled,
      failureRate: rate(p.failed, p.completed),
    })),
    stuckJobs: r.stuck_jobs.map((j) => ({
      id: j.id,
      clientId: j.client_id,
      clientName: j.client_name,
      jobType: j.job_type,
      leaseOwner: j.lease_owner,
      attempts: j.attempts,
      expiredForSeconds: seconds(j.expired_for_seconds),
    })),
    clients: r.clients.map((c) => ({ clientId: c.client_id, clientName: c.client_name, ...counts(c) })),
    jobTypes: r.job_types.map((t) => ({ jobType: t.job_type, ...counts(t) })),
    latestFailures: r.latest_failures.map((f) => ({
      id: f.id,
      clientId: f.client_id,
      clientName: f.client_name,
      jobType: f.job_type,
      attempts: f.attempts,
      maxAttempts: f.max_attempts,
      lastError: f.last_error,
      finishedAt: iso(f.finished_at),
      retryable: f.retry_blocked_by === null,
      retryBlockedBy: f.retry_blocked_by,
      attemptErrors: f.attempt_errors.map((a) => ({ at: iso(a.at), attempt: a.attempt, error: a.error, retryable: a.retryable })),
    })),
    nextJobs: r.next_jobs.map((n) => ({
      id: n.id,
      clientId: n.client_id,
      clientName: n.client_name,
      jobType: n.job_type,
      priority: n.priority,
      runAt: iso(n.run_at),
      waitingSeconds: seconds(n.waiting_seconds),
    })),
    rateLimits: r.rate_limits.map((l) => {
      // What the limit still allows now: the smaller of its two budgets (a limit of one kind only is that one).
      const budgets = [
        l.max_per_interval === null ? null : l.max_per_interval - l.started_in_interval,
        l.max_running === null ? null : l.max_running - l.running,
      ].filter((b): b is number => b !== null);
      const allowance = budgets.length ? Math.max(0, Math.min(...budgets)) : Infinity;
      return {
        scope: l.scope,
        key: l.key,
        clientName: l.client_name,
        maxPerInterval: l.max_per_interval,
        intervalSeconds: l.interval_seconds,
        startedInInterval: l.started_in_interval,
        maxRunning: l.max_running,
        running: l.running,
        runnable: l.runnable,
        held: Math.max(0, l.runnable - allowance),
      };
    }),
    alarms: opts.alarms ?? cloudWatchAlarms(),
  };
}

/** The CloudWatch console's alarm list in this region, filtered to the ones in ALARM. */
export function cloudWatchAlarms(region = process.env.AWS_REGION ?? 'us-east-1'): AlarmsView {
  return {
    source: 'cloudwatch',
    consoleUrl: `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#alarmsV2:?~(state~'ALARM)`,
  };
}
