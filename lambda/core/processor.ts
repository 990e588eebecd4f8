import { hostname } from 'node:os';
import type { Pool } from 'pg';
import { Metric } from './alarm-rules';
import type { ProcessorConfig } from './config';
import { JobError } from './errors';
import type { Logger } from './logger';
import type { MetricsSink } from './metrics';
import {
  completeAndClaimJobs,
  completeJobs,
  failJobs,
  heartbeatJobs,
  pruneFinishedJobs,
  queueStats,
  reapExpiredLeases,
  releaseJobs,
  reportProgress,
  type BackoffOptions,
  type ClaimedJob,
  type Completion,
  type FailureOutcome,
} from './queue';
import { completeAndClaimFair } from './limits';
import { enqueueDueSchedules } from './recurring';

/**
 * One processor invocation: reap lapsed leases, then claim and run jobs with
 * bounded concurrency until the queue is empty or the time budget runs out.
 * Every started job can finish (or be cut off at its timeout) before the
 * invocation must end; jobs claimed but not started are released.
 */

export interface JobContext {
  signal: AbortSignal;
  progress: (percent: number, message?: string) => Promise<void>;
}

/** The work a job does; its return value is stored as the job's result. */
export type JobWork = (job: ClaimedJob, ctx: JobContext) => Promise<Record<string, unknown>>;

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
  lost: number;
  released: number;
  /** Finished jobs deleted by retention. */
  pruned: number;
  stoppedBy: 'empty' | 'time' | 'shutdown';
}

class LeaseLost extends Error {}
class JobTimeout extends Error {}

export async function runProcessor(deps: ProcessorDeps, invocation: Invocation, shutdown?: AbortSignal): Promise<ProcessorRun> {
  const { pool, config, logger, metrics } = deps;
  const workerId = `${config.workerId ?? hostname()}:${invocation.awsRequestId}`;
  const started = Date.now();
  const run: ProcessorRun = { reaped: 0, claimed: 0, completed: 0, retried: 0, failed: 0, lost: 0, released: 0, pruned: 0, stoppedBy: 'empty' };
  // Published at once: a long run must not look like a processor that is not running.
  metrics.add(Metric.ProcessorInvocations, 1);
  metrics.flush();

  const reportFailedForGood = (o: FailureOutcome) => {
    run.failed += 1;
    metrics.add(Metric.JobsFailed, 1, 'Count', { jobId: o.id, clientId: o.clientId, error: o.error.slice(0, 500) });
    logger.error('job failed for good', {
      jobId: o.id,
      clientId: o.clientId,
      jobType: o.jobType,
      attempts: o.attempts,
      error: o.error,
      nextSteps: `inspect with GET /admin/jobs/${o.id}; re-queue with POST /admin/jobs/${o.id}/retry once the cause is fixed`,
    });
  };

  // 1. Reap: jobs whose worker stopped heartbeating go back to the queue.
  const reaped = await reapExpiredLeases(pool);
  run.reaped = reaped.length;
  if (reaped.length > 0) {
    metrics.add(Metric.JobsReaped, reaped.length);
    logger.warn('reaped expired leases', { count: reaped.length, jobIds: reaped.slice(0, 20).map((r) => r.id) });
    reaped.filter((r) => r.status === 'failed').forEach(reportFailedForGood);
  }

  // Recurring schedules whose tick has come become ordinary jobs.
  const scheduled = await enqueueDueSchedules(pool).catch((err) => {
    logger.error('enqueueing recurring jobs failed', err as Error);
    return 0;
  });
  if (scheduled > 0) logger.info('recurring jobs enqueued', { count: scheduled });

  // 2. Claim and run.
  const maxDeadline = started + config.maxRunMs;
  const timeForAnotherJob = () =>
    invocation.getRemainingTimeInMillis() > config.safetyMarginMs && Date.now() + config.jobTimeoutMs < maxDeadline;

  const held = new Map<string, { job: ClaimedJob; abort: AbortController }>();
  const buffer: ClaimedJob[] = [];
  const running = new Set<Promise<void>>();

  const heartbeat = setInterval(() => {
    const leases = [...held.values()].map(({ job }) => ({ id: job.id, token: job.leaseToken }));
    heartbeatJobs(pool, leases, config.leaseSeconds)
      .then(({ lost }) => {
        for (const id of lost) {
          const entry = held.get(id);
          if (!entry) continue;
          logger.warn('lease lost; abandoning the job', { jobId: id });
          entry.abort.abort(new LeaseLost(`lease on ${id} was lost`));
          const i = buffer.findIndex((j) => j.id === id);
          if (i >= 0) buffer.splice(i, 1);
          held.delete(id);
          run.lost += 1;
        }
      })
      .catch((err) => logger.error('heartbeat failed', err as Error));
  }, config.heartbeatSeconds * 1000);
  heartbeat.unref();

  // Nothing runnable (or rate limits hold the rest back): finish what runs, then end.
  let drained = false;
  const claimOpts = { workerId, limit: config.batchSize, leaseSeconds: config.leaseSeconds };
  // A finished job's completion rides along with the next claim: one commit for both.
  // Jobs settled so far: a claim that found nothing while a job was settling
  // (maybe re-queued for a retry) does not prove the queue empty.
  let settled = 0;
  const claimNext = async (completions: Completion[]) => {
    const before = settled;
    const result =
      config.claimMode === 'fair'
        ? await completeAndClaimFair(pool, completions, claimOpts)
        : await completeAndClaimJobs(pool, completions, claimOpts);
    drained = result.claimed.length === 0 && settled === before;
    return result;
  };
  const wantsMore = () =>
    buffer.length === 0 && running.size <= config.concurrency && !drained && !shutdown?.aborted && timeForAnotherJob();
  const take = (jobs: ClaimedJob[]) => {
    run.claimed += jobs.length;
    if (jobs.length > 0) metrics.add(Metric.JobsClaimed, jobs.length);
    for (const job of jobs) held.set(job.id, { job, abort: new AbortController() });
    buffer.push(...jobs);
  };

  const runJob = async (job: ClaimedJob) => {
    const entry = held.get(job.id);
    if (!entry) return;
    const { abort } = entry;
    const lease = { id: job.id, token: job.leaseToken };
    const t0 = Date.now();
    const timer = setTimeout(() => abort.abort(new JobTimeout(`job timed out after ${config.jobTimeoutMs} ms`)), config.jobTimeoutMs);
    const log = { jobId: job.id, clientId: job.clientId, attempt: job.attempts };
    try {
      const aborted = new Promise<never>((_, reject) => {
        if (abort.signal.aborted) reject(abort.signal.reason);
        abort.signal.addEventListener('abort', () => reject(abort.signal.reason), { once: true });
      });
      aborted.catch(() => undefined);
      const result = await Promise.race([
        deps.work(job, {
          signal: abort.signal,
          progress: async (percent, message) => {
            await reportProgress(pool, lease, percent, message);
          },
        }),
        aborted,
      ]);
      const completion = { ...lease, result };
      const { completed: done, claimed } = wantsMore() ? await claimNext([completion]) : { completed: await completeJobs(pool, [completion]), claimed: [] };
      take(claimed);
      const durationMs = Date.now() - t0;
      if (done.lost.length > 0) {
        run.lost += 1;
        logger.warn('result discarded: the lease was taken over', { ...log, durationMs });
        return;
      }
      run.completed += 1;
      metrics.add(Metric.JobsCompleted, 1);
      metrics.add(Metric.ProcessingDuration, durationMs, 'Milliseconds');
      logger.info('job completed', { ...log, durationMs, outcome: 'completed' });
    } catch (err) {
      const durationMs = Date.now() - t0;
      if (err instanceof LeaseLost) return;
      const retryable = err instanceof JobError ? err.retryable : true;
      const message = err instanceof Error ? err.message || err.name : String(err);
      const { outcomes, lost } = await failJobs(pool, [{ ...lease, error: message, retryable }], deps.backoff);
      if (lost.length > 0) {
        run.lost += 1;
        return;
      }
      const outcome = outcomes[0]!;
      metrics.add(Metric.ProcessingDuration, durationMs, 'Milliseconds');
      if (outcome.status === 'queued') {
        run.retried += 1;
        metrics.add(Metric.JobsRetried, 1);
        logger.warn('job failed; will retry', { ...log, durationMs, outcome: 'retry', error: message, nextAttemptAt: outcome.runAt });
      } else {
        reportFailedForGood(outcome);
      }
    } finally {
      clearTimeout(timer);
      held.delete(job.id);
      settled += 1;
    }
  };

  const start = (job: ClaimedJob) => {
    const p = runJob(job)
      .catch((err) => logger.error('job bookkeeping failed; the lease will lapse and the reaper will retry it', err as Error))
      .finally(() => running.delete(p));
    running.add(p);
  };

  try {
    for (;;) {
      const stopping = Boolean(shutdown?.aborted) || !timeForAnotherJob();
      if (stopping) {
        run.stoppedBy = shutdown?.aborted ? 'shutdown' : 'time';
        if (buffer.length > 0) {
          const leases = buffer.splice(0).map((j) => ({ id: j.id, token: j.leaseToken }));
          leases.forEach((l) => held.delete(l.id));
          run.released += (await releaseJobs(pool, leases)).extended.length;
        }
      } else {
        while (running.size < config.concurrency && buffer.length > 0) start(buffer.shift()!);
        if (running.size < config.concurrency && wantsMore()) {
          const jobs = (await claimNext([])).claimed;
          take(jobs);
          if (jobs.length > 0) continue;
        }
      }
      if (running.size === 0) {
        if (stopping || (drained && buffer.length === 0)) break;
        continue;
      }
      await Promise.race(running);
      // A slot came free: look at the queue again (retries and new uploads may be due).
      drained = false;
    }
  } finally {
    clearInterval(heartbeat);
    await Promise.allSettled([...running]);
  }

  // 3. Retention, in bounded batches, only with time to spare.
  if (config.retentionSeconds > 0) {
    for (let i = 0; i < config.retentionMaxBatches && !shutdown?.aborted && invocation.getRemainingTimeInMillis() > config.safetyMarginMs; i++) {
      const pruned = await pruneFinishedJobs(pool, config.retentionSeconds, config.retentionBatchSize).catch((err) => {
        logger.error('pruning finished jobs failed', err as Error);
        return 0;
      });
      run.pruned += pruned;
      if (pruned < config.retentionBatchSize) break;
    }
  }

  // 4. Queue signals for the dashboard and the age alarm.
  try {
    const stats = await queueStats(pool, { windowSeconds: 60 });
    metrics.add(Metric.QueueDepth, stats.queued);
    metrics.add(Metric.OldestJobAgeSeconds, stats.oldestRunnableAgeSeconds, 'Seconds');
  } catch (err) {
    logger.error('queue statistics failed', err as Error);
  }
  metrics.flush();
  logger.info('processor run finished', { ...run, durationMs: Date.now() - started });
  return run;
}
