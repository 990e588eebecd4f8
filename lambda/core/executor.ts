import { performance } from 'node:perf_hooks';
import { isTransientDbError } from './db';
import { JobError } from './errors';
import type { ClaimedJob } from './queue';

/**
 * Runs one job and says what happened, as a value: the executor touches no
 * database, so a fault while recording the outcome (the completer's business)
 * can never be mistaken for the job failing.
 */

export interface JobContext {
  /** Aborted when the job times out or its lease is lost: stop, and let go of what you hold. */
  signal: AbortSignal;
  /** Records how far the job got; written in the background, coalesced, never awaited on the database. */
  progress: (percent: number, message?: string) => Promise<void>;
}

/** The work a job does; its return value is stored as the job's result. */
export type JobWork = (job: ClaimedJob, ctx: JobContext) => Promise<Record<string, unknown>>;

export type Outcome =
  | { kind: 'completed'; result: Record<string, unknown> }
  /** clientCaused: the document is the problem (counted, never pages). */
  | { kind: 'failed'; error: string; retryable: boolean; clientCaused: boolean }
  /** Run again after `seconds` without spending the attempt. */
  | { kind: 'snoozed'; seconds: number; reason: string; cause: 'upstream' | 'database' }
  | { kind: 'timed_out'; error: string }
  | { kind: 'lease_lost' };

export type ExecutedJob = Outcome & { job: ClaimedJob; durationMs: number };

/**
 * The lease keeper's word on one job's lease: `lost` is set, and `onLost`
 * called, when the lease was found taken over. A plain object rather than an
 * AbortSignal: one is made per claimed job, and an AbortController with its
 * listener cost more than the rest of a no-op job's bookkeeping together.
 */
export interface LeaseWatch {
  lost: boolean;
  onLost?: () => void;
}

export interface ExecuteOptions {
  timeoutMs: number;
  /** Marked by the lease keeper when the job's lease was taken over. */
  leaseLost: LeaseWatch;
  progress: JobContext['progress'];
  /**
   * A job whose attempt ended because the database went away runs again after
   * this long, without spending the attempt: the outage is not the job's fault.
   */
  databaseRetrySeconds: number;
}

export class JobTimeout extends Error {
  override name = 'JobTimeout';
}

export class LeaseLost extends Error {
  override name = 'LeaseLost';
}

/**
 * Runs `work` for `job`. At the timeout or when the lease is lost the job's
 * signal is aborted and the outcome returned at once, without waiting for the
 * work to notice (a CPU-bound summary in a worker thread is cut off by its pool).
 */
export function executeJob(job: ClaimedJob, work: JobWork, opts: ExecuteOptions): Promise<ExecutedJob> {
  // The job's signal is made when the work first asks for it: a job that
  // never looks at it costs no AbortController.
  let abort: AbortController | undefined;
  let abortReason: Error | undefined;
  const cancel = (reason: Error) => {
    abortReason = reason;
    abort?.abort(reason);
  };
  const context: JobContext = {
    get signal() {
      if (!abort) {
        abort = new AbortController();
        if (abortReason) abort.abort(abortReason);
      }
      return abort.signal;
    },
    progress: opts.progress,
  };
  const started = performance.now();
  return new Promise<ExecutedJob>((resolve) => {
    let done = false;
    const finish = (outcome: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.leaseLost.onLost = undefined;
      resolve({ ...outcome, job, durationMs: Math.round(performance.now() - started) });
    };
    const timer = setTimeout(() => {
      const reason = new JobTimeout(`job timed out after ${opts.timeoutMs} ms`);
      finish({ kind: 'timed_out', error: reason.message });
      cancel(reason);
    }, opts.timeoutMs);
    const onLeaseLost = () => {
      finish({ kind: 'lease_lost' });
      cancel(new LeaseLost(`the lease on job ${job.id} was lost`));
    };
    if (opts.leaseLost.lost) onLeaseLost();
    else opts.leaseLost.onLost = onLeaseLost;

    let running: Promise<Record<string, unknown>>;
    try {
      running = Promise.resolve(work(job, context));
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then(
      (result) => finish({ kind: 'completed', result: result ?? {} }),
      (err: unknown) => finish(classify(err, opts.databaseRetrySeconds)),
    );
  });
}

/** What a thrown error means for the job. */
export function classify(err: unknown, databaseRetrySeconds: number): Outcome {
  const message = err instanceof Error ? err.message || err.name : String(err);
  if (err instanceof JobError) {
    switch (err.kind) {
      case 'snooze':
        return { kind: 'snoozed', seconds: err.snoozeSeconds, reason: message, cause: 'upstream' };
      case 'permanent':
        return { kind: 'failed', error: message, retryable: false, clientCaused: true };
      case 'system':
        return { kind: 'failed', error: message, retryable: false, clientCaused: false };
      default:
        return { kind: 'failed', error: message, retryable: true, clientCaused: false };
    }
  }
  if (isTransientDbError(err)) {
    return { kind: 'snoozed', seconds: databaseRetrySeconds, reason: `database unavailable: ${message}`, cause: 'database' };
  }
  return { kind: 'failed', error: message, retryable: true, clientCaused: false };
}
