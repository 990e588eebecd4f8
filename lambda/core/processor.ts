import { hostname } from 'node:os';
import type { Pool } from 'pg';
import { Metric } from './alarm-rules';
import { Completer, type Entry } from './completer';
import type { ProcessorConfig } from './config';
import { isTransientDbError } from './db';
import { executeJob, type ExecutedJob, type JobWork, type LeaseWatch } from './executor';
import { LeaseKeeper } from './lease-keeper';
import type { Logger } from './logger';
import type { MetricsSink } from './metrics';
import {
  pruneFinishedJobs,
  queueSignals,
  reapExpiredLeases,
  repairDependencies,
  type BackoffOptions,
  type ClaimedJob,
  type RecordResult,
} from './queue';
import { enqueueDueSchedules } from './recurring';

/**
 * One processor invocation: maintenance (reap lapsed leases, enqueue due
 * recurring jobs, repair dependency counts), then a short loop over the
 * executor (runs a job, returns its outcome, touches no database) and the
 * completer (records outcomes in batches, one call and one commit each, and
 * claims the next jobs with them), until the queue is empty, the time budget
 * runs out, shutdown is asked for, or the database goes away. Jobs start in
 * the order the claim returned them (fair: interleaved across clients). Jobs
 * claimed but not started are released without spending an attempt.
 */

export type { JobContext, JobWork } from './executor';

export interface ProcessorDeps {
  pool: Pool;
  config: ProcessorConfig;
  logger: Logger;
  metrics: MetricsSink;
  work: JobWork;
  backoff?: BackoffOptions;
}

/** The part of the Lambda context the processor needs. */
export interface Invocation {
  awsRequestId: string;
  getRemainingTimeInMillis: () => number;
}

export interface ProcessorRun {
  reaped: number;
  claimed: number;
  completed: number;
  retried: number;
  failed: number;
  /** Run again later without spending an attempt (throttling upstream, the database lost mid-attempt). */
  snoozed: number;
  lost: number;
  released: number;
  /** Finished jobs deleted by retention. */
  pruned: number;
  /** 'database': the run ended early because the database could not be reached. */
  stoppedBy: 'empty' | 'time' | 'shutdown' | 'database';
}

/** Options of one run beyond the Lambda context. */
export interface RunOptions {
  /**
   * Epoch ms: until then a claim that finds nothing does not end the run; it
   * claims again every CLAIM_POLL_MS. An upload's nudge asks for this, so the
   * uploads of a burst whose own nudge was skipped (one per NUDGE_INTERVAL_MS
   * per container) start on this run, not at the next scheduled minute.
   */
  claimUntil?: number;
}

/** How often a run inside its claim window looks again for jobs. */
export const CLAIM_POLL_MS = 100;
/** A claim window ends at most this long after the run started, whatever the event says. */
const MAX_CLAIM_WINDOW_MS = 5_000;

/**
 * The claim window an invocation's event asks for: an upload's nudge
 * (`{source: 'upload', sentAt, claimUntil}`, see handlers/api.ts) carries one;
 * the schedule's event, or anything else, none.
 */
export function claimUntilOf(event: unknown): number | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const { source, claimUntil } = event as { source?: unknown; claimUntil?: unknown };
  return source === 'upload' && typeof claimUntil === 'number' && Number.isFinite(claimUntil) ? claimUntil : undefined;
}

/** Powertools' number for INFO: a logger at a higher level drops info lines. */
const LOG_LEVEL_INFO = 12;
/** A job whose attempt ended because the database went away runs again this much later, the attempt not spent. */
const DATABASE_RETRY_SECONDS = 5;
/** Keep this much of a lease in hand: an outcome not recorded by then is given up to the reaper. */
const LEASE_SAFETY_MS = 1000;

export async function runProcessor(
  deps: ProcessorDeps,
  invocation: Invocation,
  shutdown?: AbortSignal,
  options: RunOptions = {},
): Promise<ProcessorRun> {
  const { pool, config, logger, metrics } = deps;
  const workerId = `${config.workerId ?? hostname()}:${invocation.awsRequestId}`;
  const started = Date.now();
  const claimUntil = Math.min(options.claimUntil ?? 0, started + MAX_CLAIM_WINDOW_MS);
  const run: ProcessorRun = {
    reaped: 0,
    claimed: 0,
    completed: 0,
    retried: 0,
    failed: 0,
    snoozed: 0,
    lost: 0,
    released: 0,
    pruned: 0,
    stoppedBy: 'empty',
  };
  // Published at once: a long run must not look like a processor that is not running.
  metrics.add(Metric.ProcessorInvocations, 1);
  metrics.flush();

  const databaseError = (what: string, err: unknown) => {
    if (isTransientDbError(err)) metrics.add(Metric.DatabaseErrors, 1);
    logger.error(what, err as Error);
  };

  // 1. Maintenance. A run that cannot reap has not reached the database: it
  // ends here, and ProcessorRunsSucceeded stays silent so the alarm sees it.
  try {
    const reaped = await reapExpiredLeases(pool);
    run.reaped = reaped.length;
    if (reaped.length > 0) {
      metrics.add(Metric.JobsReaped, reaped.length);
      logger.warn('reaped expired leases', { count: reaped.length, jobIds: reaped.slice(0, 20).map((r) => r.id) });
      for (const r of reaped.filter((x) => x.status === 'failed')) {
        reportFailedForGood(deps, run, { id: r.id, clientId: r.clientId, jobType: r.jobType, attempts: r.attempts, error: r.error, clientCaused: false });
      }
    }
  } catch (err) {
    databaseError('reaping failed; the database could not be reached, ending the run', err);
    run.stoppedBy = 'database';
    metrics.flush();
    return run;
  }
  metrics.add(Metric.ProcessorRunsSucceeded, 1);

  const scheduled = await enqueueDueSchedules(pool).catch((err) => {
    databaseError('enqueueing recurring jobs failed', err);
    return 0;
  });
  if (scheduled > 0) logger.info('recurring jobs enqueued', { count: scheduled });
  const repaired = await repairDependencies(pool).catch((err) => {
    databaseError('repairing dependency counts failed', err);
    return 0;
  });
  if (repaired > 0) logger.warn('repaired dependency counts of waiting jobs', { count: repaired });

  // 2. Claim and run.
  const maxDeadline = started + config.maxRunMs;
  const timeForAnotherJob = () =>
    invocation.getRemainingTimeInMillis() > config.safetyMarginMs && Date.now() + config.jobTimeoutMs < maxDeadline;

  const buffer: ClaimedJob[] = [];
  const running = new Map<string, Promise<void>>();
  const leaseLost = new Map<string, LeaseWatch>();
  /** Executed jobs whose outcome waits to be recorded (for the metrics and log once it is). */
  const finished = new Map<string, ExecutedJob>();
  let databaseDown = false;
  let lastClaimEmpty = false;
  let wake: () => void = () => undefined;
  const notify = () => wake();
  /** Inside the claim window, after a claim found nothing: the next look. */
  let pollTimer: NodeJS.Timeout | undefined;

  const keeper = new LeaseKeeper({
    pool,
    leaseSeconds: config.leaseSeconds,
    heartbeatMs: config.heartbeatSeconds * 1000,
    logger,
    metrics,
    onLost: (ids) => {
      const gone = new Set(ids);
      for (let i = buffer.length - 1; i >= 0; i--) if (gone.has(buffer[i]!.id)) buffer.splice(i, 1);
      // Running ones are told through their lease watch and end as lease_lost; unstarted ones end here.
      for (const id of ids) if (!running.has(id)) run.lost += 1;
      notify();
    },
    onDatabaseError: () => {
      databaseDown = true;
      notify();
    },
  });

  const tally = (entries: Entry[], result: RecordResult, claimLimit: number) => {
    // Only failures, snoozes and lost outcomes look their entry up: most flushes are all completions.
    const outcomes =
      result.failed.length + result.snoozed.length + result.lost.length > 0 ? new Map(entries.map((e) => [e.id, e])) : new Map<string, Entry>();
    if (result.completed.extended.length > 0) {
      run.completed += result.completed.extended.length;
      metrics.add(Metric.JobsCompleted, result.completed.extended.length);
    }
    // One check per flush, not per job: building a log line's fields costs even when the level drops it.
    const logCompletions = logger.level <= LOG_LEVEL_INFO;
    for (const id of result.completed.extended) {
      const executed = finished.get(id);
      finished.delete(id);
      if (executed) {
        metrics.add(Metric.ProcessingDuration, executed.durationMs, 'Milliseconds');
        if (logCompletions) logger.info('job completed', { ...jobLog(executed.job), durationMs: executed.durationMs, outcome: 'completed' });
      }
    }
    for (const f of result.failed) {
      const executed = finished.get(f.id);
      finished.delete(f.id);
      const entry = outcomes.get(f.id);
      const error = entry?.type === 'fail' ? entry.error : entry?.type === 'snooze' ? entry.reason : 'unknown';
      if (executed) metrics.add(Metric.ProcessingDuration, executed.durationMs, 'Milliseconds');
      if (f.status === 'queued') {
        run.retried += 1;
        metrics.add(Metric.JobsRetried, 1);
        logger.warn('job failed; will retry', { ...(executed ? jobLog(executed.job) : { jobId: f.id }), outcome: 'retry', error, nextAttemptAt: f.runAt });
      } else {
        const job = executed?.job;
        reportFailedForGood(deps, run, {
          id: f.id,
          clientId: job?.clientId ?? 'unknown',
          jobType: job?.jobType ?? 'unknown',
          attempts: f.attempts,
          error,
          clientCaused: entry?.type === 'fail' && entry.clientCaused === true,
        });
      }
    }
    for (const id of result.snoozed) {
      const executed = finished.get(id);
      finished.delete(id);
      const entry = outcomes.get(id);
      run.snoozed += 1;
      metrics.add(Metric.JobsSnoozed, 1);
      logger.info('job snoozed; runs again without spending an attempt', {
        ...(executed ? jobLog(executed.job) : { jobId: id }),
        ...(entry?.type === 'snooze' ? { seconds: entry.seconds, reason: entry.reason } : {}),
      });
    }
    run.released += result.released.length;
    for (const id of result.lost) {
      finished.delete(id);
      run.lost += 1;
      logger.warn('outcome discarded: the lease was taken over (or an earlier try of this write already recorded it)', {
        jobId: id,
        outcome: outcomes.get(id)?.type,
      });
    }
    take(result.claimed);
    if (claimLimit > 0) lastClaimEmpty = result.claimed.length === 0;
    // Recorded without a claim: a completion may have released dependents, a
    // failure may be due again at once; the queue is not known empty any more.
    else if (result.completed.extended.length > 0 || result.failed.some((f) => f.status === 'queued')) lastClaimEmpty = false;
    notify();
  };

  const take = (jobs: ClaimedJob[]) => {
    if (jobs.length === 0) return;
    run.claimed += jobs.length;
    metrics.add(Metric.JobsClaimed, jobs.length);
    for (const job of jobs) leaseLost.set(job.id, keeper.hold(job));
    buffer.push(...jobs);
  };

  let stopped = false;
  const stopReason = (): ProcessorRun['stoppedBy'] | null =>
    shutdown?.aborted ? 'shutdown' : databaseDown ? 'database' : !timeForAnotherJob() ? 'time' : stopped ? run.stoppedBy : null;

  const completer = new Completer({
    pool,
    workerId,
    leaseSeconds: config.leaseSeconds,
    order: config.claimMode,
    backoff: deps.backoff,
    maxSnoozes: config.maxSnoozes,
    // Outcomes go with the next claim (asked for when the slots run short of
    // jobs) or after the flush delay, not on their number: a processor holds at
    // most batch + concurrency jobs, and flushing at a batch's worth split each
    // batch into a call that records and another that claims.
    flushAt: config.batchSize + config.concurrency,
    flushDelayMs: config.flushDelayMs,
    logger,
    metrics,
    // A batch when fewer jobs wait (or are on their way) than the slots could start: the
    // next batch arrives while the last ones run, and at most batch + concurrency are held.
    room: (claiming) => (stopReason() === null && buffer.length + claiming < config.concurrency ? config.batchSize : 0),
    maxInFlight: Math.min(2, pool.options.max ?? 10),
    onRecorded: tally,
    onFlushEnd: notify,
    onGivenUp: (entries) => {
      for (const e of entries) {
        finished.delete(e.id);
        if (e.type !== 'release') run.lost += 1;
      }
      notify();
    },
    onDatabaseError: () => {
      databaseDown = true;
      notify();
    },
  });

  const recordingDeadline = (id: string) => Math.min(keeper.drop(id) - LEASE_SAFETY_MS, Date.now() + invocation.getRemainingTimeInMillis() - 500);

  const execution = {
    timeoutMs: config.jobTimeoutMs,
    progress: async (job: ClaimedJob, percent: number, message?: string) => keeper.progress({ id: job.id, token: job.leaseToken }, percent, message),
    databaseRetrySeconds: DATABASE_RETRY_SECONDS,
  };

  const executed = (job: ClaimedJob, outcome: ExecutedJob) => {
    try {
      leaseLost.delete(job.id);
      const deadline = recordingDeadline(job.id);
      const entry = toEntry(outcome);
      if (!entry) {
        run.lost += 1;
        return;
      }
      if (outcome.kind === 'timed_out') logger.warn('job timed out; its signal was aborted', { ...jobLog(job), timeoutMs: config.jobTimeoutMs });
      if (outcome.kind === 'snoozed' && outcome.cause === 'database') {
        // The job's own query found the database gone: start nothing more, hand the rest back.
        metrics.add(Metric.DatabaseErrors, 1);
        databaseDown = true;
      }
      finished.set(job.id, outcome);
      completer.add(entry, deadline);
    } catch (err) {
      logger.error('job bookkeeping failed; the lease will lapse and the reaper will retry it', err as Error);
    } finally {
      running.delete(job.id);
      notify();
    }
  };

  const start = (job: ClaimedJob) => {
    running.set(
      job.id,
      executeJob(job, deps.work, leaseLost.get(job.id)!, execution).then((outcome) => executed(job, outcome)),
    );
  };

  keeper.start();
  try {
    completer.requestClaim();
    for (;;) {
      const reason = stopReason();
      if (reason) {
        run.stoppedBy = reason;
        break;
      }
      while (running.size < config.concurrency && buffer.length > 0) start(buffer.shift()!);
      if (running.size === 0 && buffer.length === 0 && completer.idle) {
        if (!lastClaimEmpty) completer.requestClaim();
        else if (Date.now() >= claimUntil) break;
        else
          pollTimer ??= setTimeout(() => {
            pollTimer = undefined;
            lastClaimEmpty = false;
            notify();
          }, Math.min(CLAIM_POLL_MS, claimUntil - Date.now()));
      } else if (!lastClaimEmpty && buffer.length + completer.claiming < config.concurrency) {
        // Few jobs left to start: claim the next batch now, with whatever outcomes wait.
        completer.requestClaim();
      }
      // Woken by a job ending, a flush ending (onFlushEnd), a lost lease or the poll timer.
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stopped = true;
    clearTimeout(pollTimer);
    // Unstarted jobs go back at once (with whatever waits to be recorded); running ones finish.
    for (const job of buffer.splice(0)) {
      leaseLost.delete(job.id);
      completer.add({ type: 'release', id: job.id, token: job.leaseToken }, recordingDeadline(job.id));
    }
    await Promise.allSettled([...running.values()]);
    await completer.close(Date.now() + invocation.getRemainingTimeInMillis() - 500);
    await keeper.stop();
  }

  // 3. Retention, in bounded batches, only with time to spare.
  if (config.retentionSeconds > 0 && run.stoppedBy !== 'database') {
    for (let i = 0; i < config.retentionMaxBatches && !shutdown?.aborted && invocation.getRemainingTimeInMillis() > config.safetyMarginMs; i++) {
      const pruned = await pruneFinishedJobs(pool, config.retentionSeconds, config.retentionBatchSize).catch((err) => {
        databaseError('pruning finished jobs failed', err);
        return 0;
      });
      run.pruned += pruned;
      if (pruned < config.retentionBatchSize) break;
    }
  }

  // 4. Queue signals for the dashboard and the age alarm.
  try {
    const signals = await queueSignals(pool);
    metrics.add(Metric.QueueDepth, signals.queued);
    metrics.add(Metric.OldestJobAgeSeconds, signals.oldestRunnableAgeSeconds, 'Seconds');
    metrics.add(Metric.JobsHeldByRateLimit, signals.heldByRateLimit);
  } catch (err) {
    databaseError('queue statistics failed', err);
  }
  metrics.flush();
  const summary = { ...run, durationMs: Date.now() - started };
  // An idle run (every few seconds in local mode) is not news.
  if (run.claimed === 0 && run.reaped === 0 && run.pruned === 0 && run.stoppedBy === 'empty') logger.debug('processor run finished', summary);
  else logger.info('processor run finished', summary);
  return run;
}

function toEntry(executed: ExecutedJob): Entry | null {
  const lease = { id: executed.job.id, token: executed.job.leaseToken };
  switch (executed.kind) {
    case 'completed':
      return { type: 'complete', ...lease, result: executed.result };
    case 'failed':
      return { type: 'fail', ...lease, error: executed.error, retryable: executed.retryable, clientCaused: executed.clientCaused };
    case 'timed_out':
      return { type: 'fail', ...lease, error: executed.error, retryable: true };
    case 'snoozed':
      return { type: 'snooze', ...lease, seconds: executed.seconds, reason: executed.reason };
    case 'lease_lost':
      return null;
  }
}

const jobLog = (job: ClaimedJob) => ({ jobId: job.id, clientId: job.clientId, jobType: job.jobType, attempt: job.attempts });

interface FailedForGood {
  id: string;
  clientId: string;
  jobType: string;
  attempts: number;
  error: string;
  clientCaused: boolean;
}

/**
 * A job failed for good. The client's document being the problem (unreadable,
 * empty, too large...) is counted apart and does not page; anything else
 * (retries spent, a bug, a timeout, a lapsed lease) is a system failure that does.
 */
function reportFailedForGood(deps: ProcessorDeps, run: ProcessorRun, f: FailedForGood): void {
  run.failed += 1;
  const context = { jobId: f.id, clientId: f.clientId, error: f.error.slice(0, 500) };
  const log = { jobId: f.id, clientId: f.clientId, jobType: f.jobType, attempts: f.attempts, error: f.error };
  if (f.clientCaused) {
    deps.metrics.add(Metric.JobsFailedClientError, 1, 'Count', context);
    deps.logger.warn('job failed for good: the document cannot be summarized', log);
    return;
  }
  deps.metrics.add(Metric.JobsFailed, 1, 'Count', context);
  deps.logger.error('job failed for good', {
    ...log,
    nextSteps: `inspect with GET /admin/jobs/${f.id}; re-queue with POST /admin/jobs/${f.id}/retry once the cause is fixed`,
  });
}
