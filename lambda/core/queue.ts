import type { Db } from './db';
import { uuidv7 } from './ids';

/**
 * The summary_jobs queue. Its SQL is in this file, but for the hot path
 * (claim, complete, complete-and-claim): one PL/pgSQL function,
 * summary_jobs_complete_and_claim in migrations/005_hot_path_functions.sql,
 * planned once per connection. Every state change is one statement (or one
 * call), so it is atomic without an explicit transaction, and every
 * write-back from a worker (heartbeat, progress, complete, fail) is fenced by
 * the lease token handed out at claim time: once a lease lapsed and the job was
 * claimed again, the old worker's writes match no row and it is told so.
 *
 *   enqueueJobs    insert one or many jobs; an idempotency key returns the existing job
 *   claimJobs      lease a batch of runnable jobs (FOR UPDATE SKIP LOCKED)
 *   completeAndClaimJobs  complete a batch and lease the next, in one call (limits.ts: fairly)
 *   heartbeatJobs  extend the leases a worker still holds, in one statement
 *   reportProgress a running job's percent and message
 *   completeJobs   store results, fenced by lease token
 *   failJobs       retry with exponential backoff and jitter, or fail for good
 *   reapExpiredLeases  put jobs whose worker stopped heartbeating back in the queue
 *   cancelJob / retryJob / getJob / listJobs / queueStats
 */

export const JOB_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface Job {
  id: string;
  clientId: string;
  jobType: string;
  uploadId: string | null;
  payload: Record<string, unknown>;
  status: JobStatus;
  priority: number;
  runAt: Date;
  attempts: number;
  maxAttempts: number;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  heartbeatAt: Date | null;
  lastError: string | null;
  result: Record<string, unknown> | null;
  progressPercent: number | null;
  progressMessage: string | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  pendingDependencies: number;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/**
 * A job as its worker holds it: what the work needs, and the token that fences
 * every write-back. A claim returns only these columns: parsing the whole row
 * (timestamps, result, progress) for every claimed job cost more CPU than the
 * rest of the claim.
 */
export interface ClaimedJob
  extends Pick<Job, 'id' | 'clientId' | 'jobType' | 'uploadId' | 'payload' | 'priority' | 'runAt' | 'attempts' | 'maxAttempts' | 'leaseExpiresAt'> {
  status: 'running';
  leaseOwner: string;
  leaseToken: string;
}

export interface Lease {
  id: string;
  token: string;
}

export interface NewJob {
  clientId: string;
  jobType?: string;
  uploadId?: string | null;
  payload?: Record<string, unknown>;
  /** -100..100, higher first. */
  priority?: number;
  /** Not before this time (scheduled / delayed jobs). */
  runAt?: Date | null;
  maxAttempts?: number;
  idempotencyKey?: string | null;
  requestHash?: string | null;
  /** Ids of jobs (of the same client) that must complete first. */
  dependsOn?: string[];
}

export interface EnqueueResult {
  job: Job;
  /** false when an idempotency key matched an existing job. */
  created: boolean;
}

interface JobRow {
  id: string;
  client_id: string;
  job_type: string;
  upload_id: string | null;
  payload: Record<string, unknown>;
  status: JobStatus;
  priority: number;
  run_at: Date;
  attempts: number;
  max_attempts: number;
  lease_owner: string | null;
  lease_token: string | null;
  lease_expires_at: Date | null;
  heartbeat_at: Date | null;
  last_error: string | null;
  result: Record<string, unknown> | null;
  progress_percent: number | null;
  progress_message: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  pending_dependencies: number;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

export function toJob(row: JobRow): Job {
  return {
    id: row.id,
    clientId: row.client_id,
    jobType: row.job_type,
    uploadId: row.upload_id,
    payload: row.payload,
    status: row.status,
    priority: row.priority,
    runAt: row.run_at,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at,
    heartbeatAt: row.heartbeat_at,
    lastError: row.last_error,
    result: row.result,
    progressPercent: row.progress_percent,
    progressMessage: row.progress_message,
    idempotencyKey: row.idempotency_key,
    requestHash: row.request_hash,
    pendingDependencies: row.pending_dependencies,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

// Columns a client may see; the lease token never leaves the worker.
const JOB_COLUMNS = `id, client_id, job_type, upload_id, payload, status, priority, run_at, attempts, max_attempts,
lease_owner, lease_expires_at, heartbeat_at, last_error, result, progress_percent, progress_message,
idempotency_key, request_hash, pending_dependencies, created_at, updated_at, started_at, finished_at`;

const jobColumns = (alias: string) =>
  JOB_COLUMNS.split(',')
    .map((c) => `${alias}.${c.trim()}`)
    .join(', ');

// ---------------------------------------------------------------------------
// Enqueue

const ENQUEUE_INPUT = `
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::jsonb[], $6::int2[],
                       $7::timestamptz[], $8::int4[], $9::text[], $10::text[], $11::int4[])
    AS t(id, client_id, job_type, upload_id, payload, priority, run_at, max_attempts, idempotency_key, request_hash, pending)`;

const ENQUEUE_INSERT = `
  INSERT INTO summary_jobs (id, client_id, job_type, upload_id, payload, priority, run_at, max_attempts,
                            idempotency_key, request_hash, pending_dependencies)
  SELECT id, client_id, job_type, upload_id, payload, priority, coalesce(run_at, now()), max_attempts,
         idempotency_key, request_hash, pending
  FROM input`;

// Without idempotency keys there is nothing to conflict on: a plain insert
// that returns only what the database decided (the rest is the input).
const ENQUEUE_SQL = `
WITH input AS (${ENQUEUE_INPUT})
${ENQUEUE_INSERT}
RETURNING id, run_at, created_at
`;

const ENQUEUE_IDEMPOTENT_SQL = `
WITH input AS (${ENQUEUE_INPUT}
), inserted AS (${ENQUEUE_INSERT}
  ON CONFLICT (client_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING ${JOB_COLUMNS}
)
SELECT *, true AS created FROM inserted
UNION ALL
-- A key that is already taken: hand back the job that holds it.
SELECT ${jobColumns('j')}, false AS created
FROM input i JOIN summary_jobs j ON j.client_id = i.client_id AND j.idempotency_key = i.idempotency_key
WHERE i.idempotency_key IS NOT NULL AND NOT EXISTS (SELECT 1 FROM inserted x WHERE x.id = i.id)
`;

const SELECT_BY_KEYS_SQL = `
SELECT ${JOB_COLUMNS}, false AS created FROM summary_jobs
WHERE (client_id, idempotency_key) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
`;

/** The job as the plain insert stored it: the input, plus the run time and timestamps the database chose. */
function insertedJob(j: NewJob, id: string, pending: number, row: { run_at: Date; created_at: Date }): Job {
  return {
    id,
    clientId: j.clientId,
    jobType: j.jobType ?? 'summarize',
    uploadId: j.uploadId ?? null,
    payload: j.payload ?? {},
    status: 'queued',
    priority: j.priority ?? 0,
    runAt: row.run_at,
    attempts: 0,
    maxAttempts: j.maxAttempts ?? 5,
    leaseOwner: null,
    leaseExpiresAt: null,
    heartbeatAt: null,
    lastError: null,
    result: null,
    progressPercent: null,
    progressMessage: null,
    idempotencyKey: null,
    requestHash: j.requestHash ?? null,
    pendingDependencies: pending,
    createdAt: row.created_at,
    updatedAt: row.created_at,
    startedAt: null,
    finishedAt: null,
  };
}

export class QueueInputError extends Error {
  override name = 'QueueInputError';
}

/**
 * Inserts jobs in one statement. Results are in input order. A job whose
 * idempotency key exists already comes back as that existing job (created: false).
 * Dependencies are recorded in the same transaction when any job has them; pass
 * a transaction client for that.
 */
export async function enqueueJobs(db: Db, jobs: NewJob[]): Promise<EnqueueResult[]> {
  if (jobs.length === 0) return [];
  const ids = jobs.map(() => uuidv7());
  const hasDependencies = jobs.some((j) => (j.dependsOn?.length ?? 0) > 0);
  const pending = jobs.map((j) => new Set(j.dependsOn ?? []).size);
  const params = [
    ids,
    jobs.map((j) => j.clientId),
    jobs.map((j) => j.jobType ?? 'summarize'),
    jobs.map((j) => j.uploadId ?? null),
    jobs.map((j) => JSON.stringify(j.payload ?? {})),
    jobs.map((j) => j.priority ?? 0),
    jobs.map((j) => j.runAt ?? null),
    jobs.map((j) => j.maxAttempts ?? 5),
    jobs.map((j) => j.idempotencyKey ?? null),
    jobs.map((j) => j.requestHash ?? null),
    pending,
  ];
  if (!jobs.some((j) => j.idempotencyKey)) {
    const { rows } = await db.query<{ id: string; run_at: Date; created_at: Date }>(ENQUEUE_SQL, params);
    const decided = new Map(rows.map((r) => [r.id, r]));
    const results = jobs.map((j, i) => ({ job: insertedJob(j, ids[i]!, pending[i]!, decided.get(ids[i]!)!), created: true }));
    if (hasDependencies) await recordDependencies(db, jobs, results);
    return results;
  }
  const { rows } = await db.query<JobRow & { created: boolean }>(ENQUEUE_IDEMPOTENT_SQL, params);
  const byId = new Map(rows.filter((r) => r.created).map((r) => [r.id, r]));
  const byKey = new Map(rows.filter((r) => !r.created).map((r) => [`${r.client_id}\u0000${r.idempotency_key}`, r]));
  const keyOf = (j: NewJob) => `${j.clientId}\u0000${j.idempotencyKey}`;

  // A key committed by a concurrent enqueue after this statement's snapshot is
  // invisible to it: look those up once more in a fresh statement.
  const missing = jobs.filter((j, i) => !byId.has(ids[i]!) && !byKey.has(keyOf(j)));
  if (missing.length > 0) {
    const again = await db.query<JobRow & { created: boolean }>(SELECT_BY_KEYS_SQL, [
      missing.map((j) => j.clientId),
      missing.map((j) => j.idempotencyKey),
    ]);
    for (const r of again.rows) byKey.set(`${r.client_id}\u0000${r.idempotency_key}`, r);
  }

  const results = jobs.map((j, i) => {
    const created = byId.get(ids[i]!);
    const row = created ?? byKey.get(keyOf(j));
    if (!row) throw new Error(`enqueue lost track of job ${i} (idempotency key ${j.idempotencyKey ?? 'none'})`);
    return { job: toJob(row), created: Boolean(created) };
  });
  if (hasDependencies) await recordDependencies(db, jobs, results);
  return results;
}

// ---------------------------------------------------------------------------
// Dependencies (job_dependencies, migration 002)

/**
 * Records edges of newly created jobs and settles them against parents that
 * already finished: a completed parent counts as met, a parent that failed or
 * was cancelled fails the child at once. Unknown ids (or another client's)
 * throw QueueInputError, so the caller's transaction rolls back. A job can only
 * name jobs that exist before it, so a cycle cannot be formed.
 */
async function recordDependencies(db: Db, jobs: NewJob[], results: EnqueueResult[]): Promise<void> {
  const childIds: string[] = [];
  const parentIds: string[] = [];
  jobs.forEach((j, i) => {
    const r = results[i]!;
    if (!r.created) return;
    for (const parent of new Set(j.dependsOn ?? [])) {
      childIds.push(r.job.id);
      parentIds.push(parent);
    }
  });
  if (childIds.length === 0) return;
  // FOR SHARE waits for a parent whose completion is in flight and blocks one
  // from starting until these edges are committed, so no completion can miss them.
  const { rows: parents } = await db.query<{ id: string; client_id: string; status: JobStatus }>(
    `SELECT id, client_id, status FROM summary_jobs WHERE id = ANY($1::uuid[]) ORDER BY id FOR SHARE`,
    [[...new Set(parentIds)]],
  );
  const byId = new Map(parents.map((p) => [p.id, p]));
  const clientOf = new Map(results.map((r) => [r.job.id, r.job.clientId]));
  const unknown = [...new Set(parentIds.filter((p, i) => byId.get(p)?.client_id !== clientOf.get(childIds[i]!)))];
  if (unknown.length > 0) throw new QueueInputError(`unknown job id in dependsOn: ${unknown.join(', ')}`);
  const rows = childIds.map((job_id, i) => ({ job_id, depends_on: parentIds[i]!, status: byId.get(parentIds[i]!)!.status }));
  await db.query(
    `INSERT INTO job_dependencies (job_id, depends_on) SELECT * FROM unnest($1::uuid[], $2::uuid[]) ON CONFLICT DO NOTHING`,
    [childIds, parentIds],
  );
  await db.query(`UPDATE summary_jobs SET has_dependents = true WHERE id = ANY($1::uuid[]) AND NOT has_dependents`, [
    [...new Set(parentIds)],
  ]);
  // Parents that finished before their child was submitted.
  const met = rows.filter((r) => r.status === 'completed');
  if (met.length > 0) {
    await db.query(
      `UPDATE summary_jobs j SET pending_dependencies = j.pending_dependencies - m.n
       FROM (SELECT job_id, count(*)::int AS n FROM unnest($1::uuid[]) AS t(job_id) GROUP BY job_id) m
       WHERE j.id = m.job_id`,
      [met.map((r) => r.job_id)],
    );
  }
  const dead = rows.filter((r) => r.status === 'failed' || r.status === 'cancelled');
  if (dead.length > 0) {
    await db.query(
      `UPDATE summary_jobs SET status = 'failed', finished_at = now(), updated_at = now(),
         last_error = 'dependency ' || d.parent || ' ' || d.parent_status || '; not run'
       FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS d(child, parent, parent_status)
       WHERE id = d.child AND status = 'queued'`,
      [dead.map((r) => r.job_id), dead.map((r) => r.depends_on), dead.map((r) => r.status)],
    );
  }
}

// When jobs finish, their dependents move on: a completed parent releases one
// pending dependency; a parent that failed for good or was cancelled fails its
// still-queued dependents. Returns the dependents failed, for the next round.
const SETTLE_DEPENDENTS_SQL = `
WITH finished AS (
  SELECT id, status FROM summary_jobs WHERE id = ANY($1::uuid[]) AND has_dependents
), released AS (
  UPDATE summary_jobs c
  SET pending_dependencies = c.pending_dependencies - x.n, updated_at = now()
  FROM (SELECT d.job_id, count(*)::int AS n FROM job_dependencies d JOIN finished f ON f.id = d.depends_on
        WHERE f.status = 'completed' GROUP BY d.job_id) x
  WHERE c.id = x.job_id AND c.status = 'queued'
  RETURNING c.id
), doomed AS (
  UPDATE summary_jobs c
  SET status = 'failed', finished_at = now(), updated_at = now(),
      last_error = 'dependency ' || x.parent || ' ' || x.parent_status || '; not run'
  FROM (SELECT DISTINCT ON (d.job_id) d.job_id, f.id AS parent, f.status AS parent_status
        FROM job_dependencies d JOIN finished f ON f.id = d.depends_on
        WHERE f.status IN ('failed', 'cancelled') ORDER BY d.job_id, f.id) x
  WHERE c.id = x.job_id AND c.status = 'queued'
  RETURNING c.id
)
SELECT id FROM doomed
`;

/**
 * Applies finished jobs to their dependents. Failing dependents cascades: the
 * jobs failed here are settled in turn, until no more change.
 */
export async function settleDependents(db: Db, finishedIds: string[]): Promise<string[]> {
  const failed: string[] = [];
  let frontier = finishedIds;
  while (frontier.length > 0) {
    const { rows } = await db.query<{ id: string }>(SETTLE_DEPENDENTS_SQL, [frontier]);
    frontier = rows.map((r) => r.id);
    failed.push(...frontier);
  }
  return failed;
}

// ---------------------------------------------------------------------------
// Claim

export interface ClaimOptions {
  workerId: string;
  limit: number;
  leaseSeconds: number;
}

// Claiming (priority order, or fair within the rate limits), completing and both at
// once go through one function, summary_jobs_complete_and_claim
// (migrations/005_hot_path_functions.sql), whose plans are made once per
// connection: a statement sent from here is planned on every call, which cost
// more than a one-job claim itself. $1-$3 complete (ids, tokens, results),
// $4-$6 claim (owner, limit, lease seconds), $7 fair order.
const HOT_PATH_SQL = `SELECT * FROM summary_jobs_complete_and_claim($1, $2, $3, $4, $5, $6, $7)`;

/**
 * priority: highest priority first, then oldest, across all clients.
 * fair: weighted round-robin across clients (priority order within each),
 * within the rate limits (limits.ts). The same names as CLAIM_MODE.
 */
export type ClaimOrder = 'priority' | 'fair';

function sortClaimed(jobs: ClaimedJob[]): ClaimedJob[] {
  return jobs.sort(
    (a, b) => b.priority - a.priority || a.runAt.getTime() - b.runAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

type ClaimedRow = Pick<
  JobRow,
  'id' | 'client_id' | 'job_type' | 'upload_id' | 'payload' | 'priority' | 'run_at' | 'attempts' | 'max_attempts' | 'lease_expires_at'
> & { lease_owner: string; lease_token: string };

function toClaimed(row: ClaimedRow): ClaimedJob {
  return {
    id: row.id,
    clientId: row.client_id,
    jobType: row.job_type,
    uploadId: row.upload_id,
    payload: row.payload,
    status: 'running',
    priority: row.priority,
    runAt: row.run_at,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    leaseOwner: row.lease_owner,
    leaseToken: row.lease_token,
    leaseExpiresAt: row.lease_expires_at,
  };
}

/** Leases up to `limit` runnable jobs in priority order (highest first, then oldest). */
export async function claimJobs(db: Db, opts: ClaimOptions): Promise<ClaimedJob[]> {
  return (await completeAndClaimJobs(db, [], opts)).claimed;
}

// ---------------------------------------------------------------------------
// Heartbeat and progress

const HEARTBEAT_SQL = `
UPDATE summary_jobs j
SET lease_expires_at = now() + $3 * interval '1 second', heartbeat_at = now()
FROM unnest($1::uuid[], $2::uuid[]) AS l(id, token)
WHERE j.id = l.id AND j.lease_token = l.token
RETURNING j.id
`;

export interface LeaseCheck {
  extended: string[];
  /** Leases this worker no longer holds: the job was reaped and maybe claimed again. */
  lost: string[];
}

function split(leases: Lease[], kept: Set<string>): LeaseCheck {
  return {
    extended: leases.filter((l) => kept.has(l.id)).map((l) => l.id),
    lost: leases.filter((l) => !kept.has(l.id)).map((l) => l.id),
  };
}

export async function heartbeatJobs(db: Db, leases: Lease[], leaseSeconds: number): Promise<LeaseCheck> {
  if (leases.length === 0) return { extended: [], lost: [] };
  const { rows } = await db.query<{ id: string }>(HEARTBEAT_SQL, [
    leases.map((l) => l.id),
    leases.map((l) => l.token),
    leaseSeconds,
  ]);
  return split(leases, new Set(rows.map((r) => r.id)));
}

/** Records progress of a running job; false when the lease is no longer held. */
export async function reportProgress(db: Db, lease: Lease, percent: number, message?: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE summary_jobs SET progress_percent = $3, progress_message = $4, updated_at = now()
     WHERE id = $1 AND lease_token = $2`,
    [lease.id, lease.token, Math.max(0, Math.min(100, Math.round(percent))), message ?? null],
  );
  return rowCount === 1;
}

// ---------------------------------------------------------------------------
// Complete and fail

export interface Completion extends Lease {
  result: Record<string, unknown>;
}

/** Completes jobs whose lease is still held; the rest come back as lost. */
export async function completeJobs(db: Db, completions: Completion[]): Promise<LeaseCheck> {
  if (completions.length === 0) return { extended: [], lost: [] };
  return (await completeAndClaimJobs(db, completions, { workerId: '', limit: 0, leaseSeconds: 0 })).completed;
}

/**
 * Completes jobs and claims up to `opts.limit` more in one call, and so one
 * commit (one WAL flush) for both, for a worker that finished some jobs and
 * has room for more. Completing first frees their slots under the limits.
 */
export async function completeAndClaimJobs(
  db: Db,
  completions: Completion[],
  opts: ClaimOptions,
  order: ClaimOrder = 'priority',
): Promise<{ completed: LeaseCheck; claimed: ClaimedJob[] }> {
  const { rows } = await db.query<ClaimedRow & { done_ids: string[] | null; parent_ids: string[] }>(HOT_PATH_SQL, [
    completions.map((c) => c.id),
    completions.map((c) => c.token),
    completions.map((c) => JSON.stringify(c.result)),
    opts.workerId,
    opts.limit,
    opts.leaseSeconds,
    order === 'fair',
  ]);
  const first = rows.find((r) => r.done_ids !== null)!;
  if (first.parent_ids.length > 0) await settleDependents(db, first.parent_ids);
  const claimed = rows.filter((r) => r.id !== null).map(toClaimed);
  return { completed: split(completions, new Set(first.done_ids)), claimed: sortClaimed(claimed) };
}

export interface Failure extends Lease {
  error: string;
  /** false for errors that another attempt cannot fix (a corrupt document). */
  retryable: boolean;
}

export interface BackoffOptions {
  /** Delay before the second attempt; doubles with each attempt after that. */
  baseSeconds: number;
  maxSeconds: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseSeconds: 10, maxSeconds: 3600 };

export interface FailureOutcome {
  id: string;
  clientId: string;
  jobType: string;
  /** 'queued': will be retried at runAt; 'failed': failed for good. */
  status: 'queued' | 'failed';
  attempts: number;
  runAt: Date;
  error: string;
}

// Backoff: base * 2^(attempts-1), capped, then "equal jitter" (50-100% of it)
// so a burst of failures does not come back as a burst.
const FAIL_SQL = `
UPDATE summary_jobs j
SET status = CASE WHEN f.retryable AND j.attempts < j.max_attempts THEN 'queued' ELSE 'failed' END,
    run_at = CASE WHEN f.retryable AND j.attempts < j.max_attempts
                  THEN now() + least($5::float8, $4::float8 * power(2, j.attempts - 1)) * (0.5 + random() * 0.5)
                       * interval '1 second'
                  ELSE j.run_at END,
    finished_at = CASE WHEN f.retryable AND j.attempts < j.max_attempts THEN NULL ELSE now() END,
    last_error = f.error,
    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
    updated_at = now()
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $6::bool[]) AS f(id, token, error, retryable)
WHERE j.id = f.id AND j.lease_token = f.token
RETURNING j.id, j.client_id, j.job_type, j.status, j.attempts, j.run_at, j.last_error, j.has_dependents
`;

interface OutcomeRow {
  id: string;
  client_id: string;
  job_type: string;
  status: 'queued' | 'failed';
  attempts: number;
  run_at: Date;
  last_error: string;
  has_dependents: boolean;
}

const toOutcome = (r: OutcomeRow): FailureOutcome => ({
  id: r.id,
  clientId: r.client_id,
  jobType: r.job_type,
  status: r.status,
  attempts: r.attempts,
  runAt: r.run_at,
  error: r.last_error,
});

/** Records failed attempts; returns what became of each job still held, and the ids whose lease was lost. */
export async function failJobs(
  db: Db,
  failures: Failure[],
  backoff: BackoffOptions = DEFAULT_BACKOFF,
): Promise<{ outcomes: FailureOutcome[]; lost: string[] }> {
  if (failures.length === 0) return { outcomes: [], lost: [] };
  const { rows } = await db.query<OutcomeRow>(FAIL_SQL, [
    failures.map((f) => f.id),
    failures.map((f) => f.token),
    failures.map((f) => f.error.slice(0, 4000)),
    backoff.baseSeconds,
    backoff.maxSeconds,
    failures.map((f) => f.retryable),
  ]);
  await settleDependents(
    db,
    rows.filter((r) => r.status === 'failed' && r.has_dependents).map((r) => r.id),
  );
  const held = new Set(rows.map((r) => r.id));
  return { outcomes: rows.map(toOutcome), lost: failures.filter((f) => !held.has(f.id)).map((f) => f.id) };
}

// ---------------------------------------------------------------------------
// Reaper

const REAP_SQL = `
WITH expired AS (
  SELECT id FROM summary_jobs
  WHERE status = 'running' AND lease_expires_at < now()
  ORDER BY lease_expires_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
)
UPDATE summary_jobs j
SET status = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
    finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
    run_at = now(),
    last_error = 'lease expired: worker ' || coalesce(j.lease_owner, 'unknown')
                 || ' stopped heartbeating (crashed, timed out or froze) during attempt ' || j.attempts,
    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
    updated_at = now()
FROM expired
WHERE j.id = expired.id
RETURNING j.id, j.client_id, j.job_type, j.status, j.attempts, j.run_at, j.last_error, j.has_dependents
`;

/** Returns the jobs whose lease had lapsed: re-queued, or failed for good when out of attempts. */
export async function reapExpiredLeases(db: Db, limit = 1000): Promise<FailureOutcome[]> {
  const { rows } = await db.query<OutcomeRow>(REAP_SQL, [limit]);
  await settleDependents(
    db,
    rows.filter((r) => r.status === 'failed' && r.has_dependents).map((r) => r.id),
  );
  return rows.map(toOutcome);
}

// ---------------------------------------------------------------------------
// Operations on one job. clientId scopes every query to one tenant; null is
// reserved for admin callers and means "any client".

export type ChangeResult = { ok: true; job: Job } | { ok: false; reason: 'not_found' } | { ok: false; reason: 'conflict'; job: Job };

async function change(db: Db, sql: string, id: string, clientId: string | null): Promise<ChangeResult> {
  const { rows } = await db.query<JobRow>(sql, [id, clientId]);
  if (rows[0]) return { ok: true, job: toJob(rows[0]) };
  const job = await getJob(db, id, clientId);
  return job ? { ok: false, reason: 'conflict', job } : { ok: false, reason: 'not_found' };
}

/** Cancels a queued job (a running one is left to finish). */
export async function cancelJob(db: Db, id: string, clientId: string | null): Promise<ChangeResult> {
  const result = await change(
    db,
    `UPDATE summary_jobs SET status = 'cancelled', finished_at = now(), updated_at = now(),
       last_error = coalesce(last_error, 'cancelled')
     WHERE id = $1 AND ($2::uuid IS NULL OR client_id = $2) AND status = 'queued'
     RETURNING ${JOB_COLUMNS}, has_dependents`,
    id,
    clientId,
  );
  if (result.ok) await settleDependents(db, [id]);
  return result;
}

/** Puts a job that failed for good back in the queue with a fresh set of attempts. */
export async function retryJob(db: Db, id: string, clientId: string | null): Promise<ChangeResult> {
  return change(
    db,
    `UPDATE summary_jobs SET status = 'queued', attempts = 0, run_at = now(), finished_at = NULL,
       result = NULL, updated_at = now()
     WHERE id = $1 AND ($2::uuid IS NULL OR client_id = $2) AND status = 'failed' AND pending_dependencies = 0
     RETURNING ${JOB_COLUMNS}`,
    id,
    clientId,
  );
}

export async function getJob(db: Db, id: string, clientId: string | null): Promise<Job | null> {
  const { rows } = await db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM summary_jobs WHERE id = $1 AND ($2::uuid IS NULL OR client_id = $2)`,
    [id, clientId],
  );
  return rows[0] ? toJob(rows[0]) : null;
}

export interface ListOptions {
  status?: JobStatus;
  limit: number;
  /** Id of the last job of the previous page: the next page starts below it. */
  before?: string;
}

/** A client's jobs, newest first; ids are UUIDv7, so id order is creation order. */
export async function listJobs(db: Db, clientId: string, opts: ListOptions): Promise<Job[]> {
  const { rows } = await db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM summary_jobs
     WHERE client_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR id < $3)
     ORDER BY id DESC LIMIT $4`,
    [clientId, opts.status ?? null, opts.before ?? null, opts.limit],
  );
  return rows.map(toJob);
}

// ---------------------------------------------------------------------------
// Statistics

export interface QueueStats {
  /** Queued and runnable now. */
  queued: number;
  /** Queued with a run-at in the future (scheduled, or waiting for a retry). */
  scheduled: number;
  /** Queued behind unfinished dependencies. */
  waiting: number;
  running: number;
  /** Leases past their expiry that the reaper has not yet handled. */
  stuck: number;
  /** Finished within the window, by outcome. */
  completed: number;
  failed: number;
  cancelled: number;
  windowSeconds: number;
  oldestRunnableAgeSeconds: number;
}

// Every count is answered from a partial index (the backlog, the leases in
// flight, finished jobs inside the window), so its cost follows the size of the
// queue, not of the history the table keeps.
const STATS_SQL = `
SELECT
  (SELECT count(*) FROM summary_jobs
     WHERE status = 'queued' AND pending_dependencies = 0 AND run_at <= now()
       AND ($1::uuid IS NULL OR client_id = $1))::int AS queued,
  (SELECT count(*) FROM summary_jobs
     WHERE status = 'queued' AND pending_dependencies = 0 AND run_at > now()
       AND ($1::uuid IS NULL OR client_id = $1))::int AS scheduled,
  (SELECT count(*) FROM summary_jobs
     WHERE status = 'queued' AND pending_dependencies > 0
       AND ($1::uuid IS NULL OR client_id = $1))::int AS waiting,
  (SELECT count(*) FROM summary_jobs WHERE status = 'running'
       AND ($1::uuid IS NULL OR client_id = $1))::int AS running,
  (SELECT count(*) FROM summary_jobs WHERE status = 'running' AND lease_expires_at < now()
       AND ($1::uuid IS NULL OR client_id = $1))::int AS stuck,
  (SELECT coalesce(extract(epoch FROM now() - min(run_at)), 0) FROM summary_jobs
     WHERE status = 'queued' AND pending_dependencies = 0 AND run_at <= now()
       AND ($1::uuid IS NULL OR client_id = $1))::float8 AS oldest_runnable_age_seconds,
  f.completed, f.failed, f.cancelled
FROM (
  SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed,
         count(*) FILTER (WHERE status = 'failed')::int AS failed,
         count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled
  FROM summary_jobs
  WHERE finished_at > now() - $2 * interval '1 second' AND ($1::uuid IS NULL OR client_id = $1)
) f
`;

export async function queueStats(db: Db, opts: { clientId?: string | null; windowSeconds?: number } = {}): Promise<QueueStats> {
  const windowSeconds = opts.windowSeconds ?? 3600;
  const { rows } = await db.query(STATS_SQL, [opts.clientId ?? null, windowSeconds]);
  const r = rows[0];
  return {
    queued: r.queued,
    scheduled: r.scheduled,
    waiting: r.waiting,
    running: r.running,
    stuck: r.stuck,
    completed: r.completed,
    failed: r.failed,
    cancelled: r.cancelled,
    windowSeconds,
    oldestRunnableAgeSeconds: Math.round(r.oldest_runnable_age_seconds * 1000) / 1000,
  };
}

// ---------------------------------------------------------------------------
// Release

const RELEASE_SQL = `
UPDATE summary_jobs j
SET status = 'queued', attempts = j.attempts - 1, run_at = now(),
    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
FROM unnest($1::uuid[], $2::uuid[]) AS l(id, token)
WHERE j.id = l.id AND j.lease_token = l.token
RETURNING j.id
`;

/**
 * Hands claimed jobs that were never started back to the queue (shutdown, or
 * too little time left), without spending one of their attempts.
 */
export async function releaseJobs(db: Db, leases: Lease[]): Promise<LeaseCheck> {
  if (leases.length === 0) return { extended: [], lost: [] };
  const { rows } = await db.query<{ id: string }>(RELEASE_SQL, [leases.map((l) => l.id), leases.map((l) => l.token)]);
  return split(leases, new Set(rows.map((r) => r.id)));
}

// ---------------------------------------------------------------------------
// Retention

// Oldest finished jobs first, a bounded batch at a time, skipping any row a
// claimer or an operator holds: pruning never waits on, or blocks, the hot path.
const PRUNE_SQL = `
WITH doomed AS (
  SELECT id FROM summary_jobs
  WHERE finished_at < now() - $1 * interval '1 second'
  ORDER BY finished_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), jobs AS (
  DELETE FROM summary_jobs j USING doomed d WHERE j.id = d.id RETURNING j.id, j.upload_id
), edges AS (
  DELETE FROM job_dependencies WHERE job_id IN (SELECT id FROM jobs) OR depends_on IN (SELECT id FROM jobs)
), files AS (
  DELETE FROM uploads WHERE id IN (SELECT upload_id FROM jobs WHERE upload_id IS NOT NULL)
)
SELECT count(*)::int AS n FROM jobs
`;

/** Deletes up to `batchSize` jobs (and their uploads) finished longer than `olderThanSeconds` ago. */
export async function pruneFinishedJobs(db: Db, olderThanSeconds: number, batchSize = 1000): Promise<number> {
  const { rows } = await db.query<{ n: number }>(PRUNE_SQL, [olderThanSeconds, batchSize]);
  return rows[0]!.n;
}
