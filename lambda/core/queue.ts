import type { Db } from './db';
import { ProblemError } from './errors';
import { uuidv7 } from './ids';

/**
 * The summary_jobs queue. Its SQL is in this file, but for the state changes
 * that move several jobs at once, which are PL/pgSQL functions planned once per
 * connection: summary_jobs_complete_and_claim (the hot path, migration 005,
 * replaced in 006 and 007), summary_jobs_record (a worker's batch of outcomes
 * and its next claim, 006 and 007), summary_jobs_reap, summary_jobs_cancel and
 * summary_jobs_settle_dependents (migrations/006_record_outcomes.sql).
 * Every state change is one statement or one call, so it is atomic without an
 * explicit transaction, dependents included: a job that finishes moves its
 * dependents in the same transaction. Every write-back from a worker
 * (heartbeat, progress, complete, fail, snooze, release) is fenced by the lease
 * token handed out at claim time: once a lease lapsed and the job was claimed
 * again, the old worker's writes match no row and it is told so.
 *
 *   enqueueJobs    insert one or many jobs; an idempotency key returns the existing job
 *   claimJobs      lease a batch of runnable jobs (FOR UPDATE SKIP LOCKED)
 *   completeAndClaimJobs  complete a batch and lease the next, in one call (limits.ts: fairly)
 *   recordOutcomes complete, fail, snooze and release a batch, and claim the next, in one call
 *   heartbeatJobs  extend the leases a worker still holds, in one statement
 *   reportProgress running jobs' percent and message, in one statement
 *   completeJobs / failJobs  one kind of outcome alone (through completeAndClaimJobs, recordOutcomes)
 *   reapExpiredLeases  put jobs whose worker stopped heartbeating back in the queue
 *   repairDependencies  recount waiting jobs left inconsistent by older versions
 *   cancelJob / retryJob / getJob / listJobs / queueStats / queueSignals
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
  /** Every failed attempt, oldest first (kept when the job is retried); absent on jobs built outside the queue. */
  attemptErrors?: AttemptError[];
  /** Runs put back without spending an attempt (throttling, the database going away). */
  snoozes?: number;
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

/** One failed attempt, as kept in summary_jobs.attempt_errors. */
export interface AttemptError {
  /** ISO time the failure was recorded. */
  at: string;
  attempt: number;
  error: string;
  /** Whether another attempt was allowed to follow (false: the job failed for good at this attempt). */
  retryable: boolean;
  /** The lease owner that ran the attempt (host:request id). */
  worker: string | null;
  /**
   * The client's document was the problem (unreadable, empty, too large), not
   * the system. Always written by summary_jobs_record and the reaper; optional
   * on reading, and presented as false when absent.
   */
  clientCaused?: boolean;
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
  attempt_errors: AttemptError[] | null;
  snoozes: number;
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
    attemptErrors: row.attempt_errors ?? [],
    snoozes: row.snoozes,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

// Columns a client may see; the lease token never leaves the worker.
const JOB_COLUMNS = `id, client_id, job_type, upload_id, payload, status, priority, run_at, attempts, max_attempts,
lease_owner, lease_expires_at, heartbeat_at, last_error, result, progress_percent, progress_message,
idempotency_key, request_hash, pending_dependencies, attempt_errors, snoozes, created_at, updated_at, started_at, finished_at`;

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
    attemptErrors: [],
    snoozes: 0,
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

// ---------------------------------------------------------------------------
// Claim

export interface ClaimOptions {
  workerId: string;
  limit: number;
  leaseSeconds: number;
}

// Claiming (priority order, or fair within the rate limits), completing and both at
// once go through one function, summary_jobs_complete_and_claim (migration 005,
// replaced in 006), whose plans are made once per connection: a statement sent
// from here is planned on every call, which cost more than a one-job claim
// itself. $1-$3 complete (ids, tokens, results), $4-$6 claim (owner, limit,
// lease seconds), $7 fair order. Rows come back in claim order.
const HOT_PATH_SQL = `SELECT * FROM summary_jobs_complete_and_claim($1, $2, $3, $4, $5, $6, $7)`;

/**
 * priority: highest priority first, then oldest, across all clients.
 * fair: weighted round-robin across clients (priority order within each),
 * within the rate limits (limits.ts). The same names as CLAIM_MODE.
 */
export type ClaimOrder = 'priority' | 'fair';

type ClaimedRow = Pick<
  JobRow,
  'id' | 'client_id' | 'job_type' | 'upload_id' | 'payload' | 'priority' | 'run_at' | 'attempts' | 'max_attempts' | 'lease_expires_at'
> & { lease_owner: string; lease_token: string };

/** A claimed row as a job; the two times are passed apart, since the record path reads them as epoch milliseconds. */
function toClaimed(
  row: Omit<ClaimedRow, 'run_at' | 'lease_expires_at'>,
  runAt: Date,
  leaseExpiresAt: Date | null,
): ClaimedJob {
  return {
    id: row.id,
    clientId: row.client_id,
    jobType: row.job_type,
    uploadId: row.upload_id,
    payload: row.payload,
    status: 'running',
    priority: row.priority,
    runAt,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    leaseOwner: row.lease_owner,
    leaseToken: row.lease_token,
    leaseExpiresAt,
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

export interface ProgressUpdate extends Lease {
  percent: number;
  message?: string | null;
}

const PROGRESS_SQL = `
UPDATE summary_jobs j
SET progress_percent = p.percent, progress_message = p.message, updated_at = now()
FROM unnest($1::uuid[], $2::uuid[], $3::int2[], $4::text[]) AS p(id, token, percent, message)
WHERE j.id = p.id AND j.lease_token = p.token
RETURNING j.id
`;

/** Records the progress of running jobs in one statement; returns the leases no longer held. */
export async function reportProgress(db: Db, updates: ProgressUpdate[]): Promise<LeaseCheck> {
  if (updates.length === 0) return { extended: [], lost: [] };
  const { rows } = await db.query<{ id: string }>(PROGRESS_SQL, [
    updates.map((u) => u.id),
    updates.map((u) => u.token),
    updates.map((u) => Math.max(0, Math.min(100, Math.round(u.percent)))),
    updates.map((u) => (u.message ?? null)?.slice(0, 500) ?? null),
  ]);
  return split(updates, new Set(rows.map((r) => r.id)));
}

// ---------------------------------------------------------------------------
// Complete, fail, snooze, release: recordOutcomes

export interface Completion extends Lease {
  result: Record<string, unknown>;
}

export interface Failure extends Lease {
  error: string;
  /** false for errors that another attempt cannot fix (a corrupt document). */
  retryable: boolean;
  /** The client's document was the problem (kept in the attempt history; default false). */
  clientCaused?: boolean;
}

export interface Snooze extends Lease {
  /** Run again after this many seconds, without spending the attempt. */
  seconds: number;
  /** Why; becomes the error when the job has snoozed too often. */
  reason: string;
}

export interface BackoffOptions {
  /** Delay before the second attempt; doubles with each attempt after that. */
  baseSeconds: number;
  maxSeconds: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseSeconds: 10, maxSeconds: 3600 };

/** Snoozes a job may take before a snooze counts as a failed attempt. */
export const DEFAULT_MAX_SNOOZES = 20;

export interface FailureOutcome {
  id: string;
  /** 'queued': will be retried at runAt; 'failed': failed for good. */
  status: 'queued' | 'failed';
  attempts: number;
  runAt: Date;
}

/** A worker's outcomes, recorded together. */
export interface OutcomeBatch {
  completed?: Completion[];
  failed?: Failure[];
  snoozed?: Snooze[];
  /** Claimed but never started: back to the queue, the attempt not spent. */
  released?: Lease[];
}

export interface RecordOptions {
  backoff?: BackoffOptions;
  maxSnoozes?: number;
  /** Claim this many more jobs in the same call (none by default). */
  claim?: ClaimOptions & { order?: ClaimOrder };
}

export interface RecordResult {
  completed: LeaseCheck;
  /** What became of each failure still held (snoozes past their bound included). */
  failed: FailureOutcome[];
  snoozed: string[];
  released: string[];
  /** Outcomes of any kind whose lease was no longer held: nothing was written for them. */
  lost: string[];
  claimed: ClaimedJob[];
}

// $1-$3 completions, $4-$8 failures, $9-$12 snoozes, $13-$14 releases,
// $15-$18 the claim (owner, limit, lease seconds, fair), $19-$20 backoff
// (base, cap, in seconds), $21 the snooze bound. Rows come back in claim order;
// the first carries `recorded` (migrations 006 and 007).
//
// The hot path's bulk crosses the wire as plain text rather than arrays and
// timestamps: ids and tokens joined with commas, the results as one JSON
// array, the completed ids joined, the two timestamps as epoch milliseconds.
// node-postgres quotes and escapes every element of an array parameter, and
// parses every array element and timestamp it reads with a regular
// expression; at a hundred jobs a call those were 3-4 us of Node CPU per job.
const RECORD_SQL = `
SELECT r.recorded, array_to_string(r.done_ids, ',') AS done_ids, r.id, r.client_id, r.job_type, r.upload_id,
       r.payload, r.priority, (extract(epoch FROM r.run_at) * 1000)::float8 AS run_at, r.attempts, r.max_attempts,
       r.lease_owner, r.lease_token, (extract(epoch FROM r.lease_expires_at) * 1000)::float8 AS lease_expires_at
FROM summary_jobs_record(
  string_to_array($1, ',')::uuid[], string_to_array($2, ',')::uuid[],
  ARRAY(SELECT t.result FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS t(result, n) ORDER BY t.n),
  $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) r`;

interface RecordedRow extends Omit<ClaimedRow, 'run_at' | 'lease_expires_at'> {
  recorded: { failed: { id: string; status: 'queued' | 'failed'; attempts: number; runAt: string }[]; snoozed: string[]; released: string[] } | null;
  /** Comma-joined; on the first row only. */
  done_ids: string | null;
  /** Epoch milliseconds. */
  run_at: number;
  lease_expires_at: number;
}

/**
 * Records a batch of outcomes and claims the next jobs, in one call and so one
 * commit: either all of it happened or none of it did, and the caller may
 * simply send the same batch again after a transient error (a write whose
 * lease is gone, because the first try did commit, comes back as lost).
 */
export async function recordOutcomes(db: Db, batch: OutcomeBatch, opts: RecordOptions = {}): Promise<RecordResult> {
  const completed = batch.completed ?? [];
  const failed = batch.failed ?? [];
  const snoozed = batch.snoozed ?? [];
  const released = batch.released ?? [];
  const backoff = opts.backoff ?? DEFAULT_BACKOFF;
  const claim = opts.claim;
  const { rows } = await db.query<RecordedRow>(RECORD_SQL, [
    completed.map((c) => c.id).join(','),
    completed.map((c) => c.token).join(','),
    JSON.stringify(completed.map((c) => c.result)),
    failed.map((f) => f.id),
    failed.map((f) => f.token),
    failed.map((f) => f.error.slice(0, 4000)),
    failed.map((f) => f.retryable),
    failed.map((f) => f.clientCaused ?? false),
    snoozed.map((s) => s.id),
    snoozed.map((s) => s.token),
    snoozed.map((s) => Math.max(0, s.seconds)),
    snoozed.map((s) => s.reason.slice(0, 4000)),
    released.map((r) => r.id),
    released.map((r) => r.token),
    claim?.workerId ?? '',
    claim?.limit ?? 0,
    claim?.leaseSeconds ?? 0,
    (claim?.order ?? 'priority') === 'fair',
    backoff.baseSeconds,
    backoff.maxSeconds,
    opts.maxSnoozes ?? DEFAULT_MAX_SNOOZES,
  ]);
  const first = rows.find((r) => r.recorded !== null)!;
  const recorded = first.recorded!;
  const failures = recorded.failed.map((f) => ({ id: f.id, status: f.status, attempts: f.attempts, runAt: new Date(f.runAt) }));
  const doneIds = first.done_ids ? first.done_ids.split(',') : [];
  const held = new Set([...doneIds, ...failures.map((f) => f.id), ...recorded.snoozed, ...recorded.released]);
  return {
    completed: split(completed, new Set(doneIds)),
    failed: failures,
    snoozed: recorded.snoozed,
    released: recorded.released,
    lost: [...completed, ...failed, ...snoozed, ...released].filter((l) => !held.has(l.id)).map((l) => l.id),
    claimed: rows.filter((r) => r.id !== null).map((r) => toClaimed(r, new Date(r.run_at), new Date(r.lease_expires_at))),
  };
}

/** Completes jobs whose lease is still held; the rest come back as lost. */
export async function completeJobs(db: Db, completions: Completion[]): Promise<LeaseCheck> {
  if (completions.length === 0) return { extended: [], lost: [] };
  return (await completeAndClaimJobs(db, completions, { workerId: '', limit: 0, leaseSeconds: 0 })).completed;
}

/**
 * Completes jobs and claims up to `opts.limit` more in one call, and so one
 * commit (one WAL flush) for both, for a worker that finished some jobs and
 * has room for more. Completing first frees their slots under the limits, and
 * releases the completed jobs' dependents, which the same claim may take.
 */
export async function completeAndClaimJobs(
  db: Db,
  completions: Completion[],
  opts: ClaimOptions,
  order: ClaimOrder = 'priority',
): Promise<{ completed: LeaseCheck; claimed: ClaimedJob[] }> {
  const { rows } = await db.query<ClaimedRow & { done_ids: string[] | null }>(HOT_PATH_SQL, [
    completions.map((c) => c.id),
    completions.map((c) => c.token),
    completions.map((c) => JSON.stringify(c.result)),
    opts.workerId,
    opts.limit,
    opts.leaseSeconds,
    order === 'fair',
  ]);
  const first = rows.find((r) => r.done_ids !== null)!;
  const claimed = rows.filter((r) => r.id !== null).map((r) => toClaimed(r, r.run_at, r.lease_expires_at));
  return { completed: split(completions, new Set(first.done_ids)), claimed };
}

/** Records failed attempts; returns what became of each job still held, and the ids whose lease was lost. */
export async function failJobs(
  db: Db,
  failures: Failure[],
  backoff: BackoffOptions = DEFAULT_BACKOFF,
): Promise<{ outcomes: FailureOutcome[]; lost: string[] }> {
  if (failures.length === 0) return { outcomes: [], lost: [] };
  const result = await recordOutcomes(db, { failed: failures }, { backoff });
  return { outcomes: result.failed, lost: result.lost };
}

// ---------------------------------------------------------------------------
// Reaper and repair

export interface ReapedJob extends FailureOutcome {
  clientId: string;
  jobType: string;
  error: string;
}

/** Returns the jobs whose lease had lapsed: re-queued, or failed for good when out of attempts. */
export async function reapExpiredLeases(db: Db, limit = 1000): Promise<ReapedJob[]> {
  const { rows } = await db.query<{
    id: string;
    client_id: string;
    job_type: string;
    status: 'queued' | 'failed';
    attempts: number;
    run_at: Date;
    last_error: string;
  }>(`SELECT * FROM summary_jobs_reap($1)`, [limit]);
  return rows.map((r) => ({
    id: r.id,
    clientId: r.client_id,
    jobType: r.job_type,
    status: r.status,
    attempts: r.attempts,
    runAt: r.run_at,
    error: r.last_error,
  }));
}

/**
 * Repairs up to `limit` waiting jobs whose dependency count disagrees with
 * their parents (left by versions that moved dependents in a second statement);
 * returns how many it changed. Cheap: it looks only at jobs waiting for over a
 * minute, oldest update first.
 */
export async function repairDependencies(db: Db, limit = 200): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT summary_jobs_repair_dependencies($1) AS n`, [limit]);
  return rows[0]!.n;
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

/** Cancels a queued job (a running one is left to finish); its dependents fail in the same call. */
export async function cancelJob(db: Db, id: string, clientId: string | null): Promise<ChangeResult> {
  return change(db, `SELECT ${JOB_COLUMNS} FROM summary_jobs_cancel($1, $2)`, id, clientId);
}

// A failed job goes back to the queue with a fresh set of attempts and snoozes,
// its progress cleared and its attempt history kept, only when every job it
// depends on has completed (a job failed because of its dependency can run once
// the parent was retried and completed). One statement: the dependency check
// and the change see the same rows.
const RETRY_SQL = `
UPDATE summary_jobs j
SET status = 'queued', attempts = 0, snoozes = 0, pending_dependencies = 0, run_at = now(), finished_at = NULL,
    result = NULL, progress_percent = NULL, progress_message = NULL, updated_at = now()
WHERE j.id = $1 AND ($2::uuid IS NULL OR j.client_id = $2) AND j.status = 'failed'
  AND NOT EXISTS (SELECT 1 FROM job_dependencies d JOIN summary_jobs p ON p.id = d.depends_on
                  WHERE d.job_id = j.id AND p.status <> 'completed')
RETURNING ${jobColumns('j')}
`;

/**
 * Puts a job that failed for good back in the queue with a fresh set of
 * attempts. A job whose dependency has not completed is refused with a 409
 * problem naming that dependency (ProblemError, mapped by the API as is).
 */
export async function retryJob(db: Db, id: string, clientId: string | null): Promise<ChangeResult> {
  const result = await change(db, RETRY_SQL, id, clientId);
  if (result.ok || result.reason !== 'conflict' || result.job.status !== 'failed') return result;
  const { rows } = await db.query<{ id: string; status: JobStatus }>(
    `SELECT p.id, p.status FROM job_dependencies d JOIN summary_jobs p ON p.id = d.depends_on
     WHERE d.job_id = $1 AND p.status <> 'completed' ORDER BY p.id LIMIT 1`,
    [id],
  );
  const parent = rows[0];
  if (!parent) return result;
  throw new ProblemError(
    409,
    'Conflict',
    `job ${id} depends on job ${parent.id}, which is ${parent.status}; retry that job first and retry this one once it has completed`,
    'dependency-not-completed',
    { jobStatus: result.job.status, dependency: { id: parent.id, status: parent.status } },
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
  /** Age of the oldest runnable job that no rate limit holds back. */
  oldestRunnableAgeSeconds: number;
}

// A runnable job whose client or job type is at its rate limit is "held": left
// out of the oldest age (and counted apart in SIGNALS_SQL below), since waiting
// is what the limit asks of it, not the processor falling behind.
const HELD_CTE = `WITH held AS (
  SELECT coalesce(array_agg(a.key) FILTER (WHERE a.scope = 'client'), '{}') AS clients,
         coalesce(array_agg(a.key) FILTER (WHERE a.scope = 'job_type'), '{}') AS job_types
  FROM summary_jobs_rate_allowances() a WHERE a.allowance <= 0
)
`;

// Every count is answered from a partial index (the backlog, the leases in
// flight, finished jobs inside the window), so its cost follows the size of the
// queue, not of the history the table keeps.
const STATS_SQL = `
${HELD_CTE}SELECT
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
  (SELECT coalesce(extract(epoch FROM now() - min(s.run_at)), 0) FROM summary_jobs s, held h
     WHERE s.status = 'queued' AND s.pending_dependencies = 0 AND s.run_at <= now()
       AND s.client_id::text <> ALL (h.clients) AND s.job_type <> ALL (h.job_types)
       AND ($1::uuid IS NULL OR s.client_id = $1))::float8 AS oldest_runnable_age_seconds,
  f.completed, f.failed, f.cancelled
FROM (
  SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed,
         count(*) FILTER (WHERE status = 'failed')::int AS failed,
         count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled
  FROM summary_jobs
  WHERE finished_at > now() - $2 * interval '1 second' AND ($1::uuid IS NULL OR client_id = $1)
) f
`;

// The processor's signals after every run: the backlog, the jobs a limit
// holds, the oldest age. Not the finished-in-window counts of STATS_SQL: at a
// sustained 20,000 jobs/s a 60 s window holds 1.2M finished rows, and counting
// them cost each run about half a second of database time (200,000 jobs just
// finished: 0.5 s per run, four runs at once).
const SIGNALS_SQL = `
${HELD_CTE}SELECT
  count(s.id)::int AS queued,
  count(s.id) FILTER (WHERE s.client_id::text = ANY (h.clients) OR s.job_type = ANY (h.job_types))::int AS held,
  coalesce(extract(epoch FROM now() - min(s.run_at) FILTER (
    WHERE s.client_id::text <> ALL (h.clients) AND s.job_type <> ALL (h.job_types))), 0)::float8
    AS oldest_runnable_age_seconds
FROM held h
LEFT JOIN summary_jobs s ON s.status = 'queued' AND s.pending_dependencies = 0 AND s.run_at <= now()
`;

/** The processor's view of the queue, published as metrics after each run. */
export interface QueueSignals {
  /** Queued and runnable now. */
  queued: number;
  /** Age of the oldest runnable job that no rate limit holds back. */
  oldestRunnableAgeSeconds: number;
  /** Runnable jobs held back only by a rate limit (their client or job type is at its limit). */
  heldByRateLimit: number;
}

export async function queueSignals(db: Db): Promise<QueueSignals> {
  const { rows } = await db.query(SIGNALS_SQL);
  const r = rows[0];
  return {
    queued: r.queued,
    oldestRunnableAgeSeconds: Math.round(r.oldest_runnable_age_seconds * 1000) / 1000,
    heldByRateLimit: r.held,
  };
}

/** Counts per state, as the API and the dashboard show them. */
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
