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

/** The same for every job of a run: one object, not one per job. */
export interface ExecuteOptions {
  timeoutMs: number;
  /** Records a job's progress (the lease keeper coalesces and writes it). */
  progress: (job: ClaimedJob, percent: number, message?: string) => Promise<void>;
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
 * Runs `work` for `job`. At the timeout or when the lease is lost (`leaseLost`,
 * marked by the lease keeper) the job's signal is aborted and the outcome
 * returned at once, without waiting for the work to notice (a CPU-bound
 * summary in a worker thread is cut off by its pool).
 */
export function executeJob(job: ClaimedJob, work: JobWork, leaseLost: LeaseWatch, opts: ExecuteOptions): Promise<ExecutedJob> {
  return new Promise<ExecutedJob>((resolve) => new Execution(job, leaseLost, opts, resolve).run(work));
}

/**
 * One job's run. A class rather than closures: a no-op job's
 * bookkeeping is the processor's cost per job, and each closure (with the
 * promise reactions around it) is an allocation per job.
 */
class Execution {
  private abort?: AbortController;
  private abortReason?: Error;
  private done = false;
  private readonly timer: NodeJS.Timeout;
  private readonly started = performance.now();

  constructor(
    private readonly job: ClaimedJob,
    private readonly leaseLost: LeaseWatch,
    private readonly opts: ExecuteOptions,
    private readonly resolve: (executed: ExecutedJob) => void,
  ) {
    this.timer = setTimeout(onTimeout, opts.timeoutMs, this);
  }

  // The signal is made when the work first asks for it: a job that never
  // looks at it costs no AbortController.
  private signal(): AbortSignal {
    if (!this.abort) {
      this.abort = new AbortController();
      if (this.abortReason) this.abort.abort(this.abortReason);
    }
    return this.abort.signal;
  }

  /** What the work sees: a plain object (it may be copied), not this one. */
  private context(): JobContext {
    const execution = this;
    return {
      get signal() {
        return execution.signal();
      },
      progress: (percent, message) => this.opts.progress(this.job, percent, message),
    };
  }

  run(work: JobWork): void {
    // Lost before it started: nothing to run.
    if (this.leaseLost.lost) return this.onLeaseLost();
    this.leaseLost.onLost = () => this.onLeaseLost();
    let running: Promise<Record<string, unknown>>;
    try {
      running = Promise.resolve(work(this.job, this.context()));
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then(
      (result) => this.finish({ kind: 'completed', result: result ?? {} }),
      (err: unknown) => this.finish(classify(err, this.opts.databaseRetrySeconds)),
    );
  }

  timedOut(): void {
    const reason = new JobTimeout(`job timed out after ${this.opts.timeoutMs} ms`);
    this.finish({ kind: 'timed_out', error: reason.message });
    this.cancel(reason);
  }

  private onLeaseLost(): void {
    this.finish({ kind: 'lease_lost' });
    this.cancel(new LeaseLost(`the lease on job ${this.job.id} was lost`));
  }

  private cancel(reason: Error): void {
    this.abortReason = reason;
    this.abort?.abort(reason);
  }

  private finish(outcome: Outcome): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.leaseLost.onLost = undefined;
    const executed = outcome as ExecutedJob;
    executed.job = this.job;
    executed.durationMs = Math.round(performance.now() - this.started);
    this.resolve(executed);
  }
}

function onTimeout(execution: Execution): void {
  execution.timedOut();
}

/** What a thrown error means for the job. */
function classify(err: unknown, databaseRetrySeconds: number): Outcome {
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
