import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { Metric } from './alarm-rules';
import { isTransientDbError } from './db';
import type { Logger } from './logger';
import type { MetricsSink } from './metrics';
import {
  recordOutcomes,
  type BackoffOptions,
  type ClaimedJob,
  type ClaimOrder,
  type Completion,
  type Failure,
  type Lease,
  type RecordResult,
  type Snooze,
} from './queue';

/**
 * Records outcomes in batches: each flush is one call and one commit
 * (summary_jobs_record) that completes, fails, snoozes and releases whatever
 * waits, moves dependents, and claims the worker's next jobs when it has room.
 *
 * A flush starts when `flushAt` outcomes wait, `flushDelayMs` after the first
 * one arrived, when the worker asks for jobs, and at close. A flush that fails
 * on a database fault is sent again, with everything that arrived meanwhile,
 * after a backoff: a write error is never a job failure. An outcome that could
 * not be recorded before its lease lapsed is given up and logged (the reaper
 * runs the job again: at-least-once).
 */

export type Entry =
  | ({ type: 'complete' } & Completion)
  | ({ type: 'fail' } & Failure)
  | ({ type: 'snooze' } & Snooze)
  | ({ type: 'release' } & Lease);

interface Waiting {
  entry: Entry;
  /** Give up recording after this local time (the lease lapses then). */
  deadline: number;
}

export interface CompleterOptions {
  pool: Pool;
  workerId: string;
  leaseSeconds: number;
  order: ClaimOrder;
  backoff?: BackoffOptions;
  maxSnoozes?: number;
  flushAt: number;
  flushDelayMs: number;
  logger: Logger;
  metrics: MetricsSink;
  /** How many jobs the worker would take now (0: claim nothing), given the jobs claims in flight will bring; asked at each flush. */
  room: (claiming: number) => number;
  /**
   * Flushes in flight at once (default 1). With two, one flush can claim while
   * another records: a pool's second connection keeps the database busy while
   * the first answer travels and the worker runs jobs.
   */
  maxInFlight?: number;
  /** A flush's result, with the entries it recorded, and the claim's limit (0: none asked). */
  onRecorded: (entries: Entry[], result: RecordResult, claimLimit: number) => void;
  /** Called whenever a flush ends (recorded, or gave up): the processor's loop wakes on it. */
  onFlushEnd?: () => void;
  /** Entries given up: their lease lapsed before they could be recorded. */
  onGivenUp?: (entries: Entry[]) => void;
  /** A flush failed for the connection, or a third time in a row for a conflict (it will be retried): the database looks gone. */
  onDatabaseError?: (err: unknown) => void;
  /** Delay before the n-th retry of a failed flush (default: 50 ms doubling to 2 s, with jitter). */
  retryDelayMs?: (attempt: number) => number;
}

const isConflict = (err: unknown) => ['40001', '40P01'].includes((err as { code?: string } | null)?.code ?? '');
const defaultRetryDelay = (attempt: number) => Math.min(2000, 50 * 2 ** attempt) * (0.5 + Math.random() * 0.5);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Completer {
  private waiting: Waiting[] = [];
  private claimWanted = false;
  private closing = false;
  private timer?: NodeJS.Timeout;
  private readonly flushing = new Set<Promise<void>>();
  /** Jobs asked for by the claims in flight. */
  private claimingJobs = 0;

  constructor(private readonly opts: CompleterOptions) {}

  /** Nothing waits and nothing is being sent. */
  get idle(): boolean {
    return this.waiting.length === 0 && this.flushing.size === 0 && !this.claimWanted;
  }

  /** Jobs the claims in flight asked for. */
  get claiming(): number {
    return this.claimingJobs;
  }

  add(entry: Entry, deadline: number): void {
    this.waiting.push({ entry, deadline });
    if (this.waiting.length >= this.opts.flushAt) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.opts.flushDelayMs);
  }

  /** The worker has room: flush now, claiming with whatever waits. */
  requestClaim(): void {
    this.claimWanted = true;
    this.kick();
  }

  /** Records everything that waits, retrying until each entry's deadline (or `deadline`), and claims nothing more. */
  async close(deadline: number): Promise<void> {
    this.closing = true;
    for (const w of this.waiting) w.deadline = Math.min(w.deadline, deadline);
    this.kick();
    while (this.flushing.size > 0 || this.waiting.length > 0) {
      await Promise.all([...this.flushing]);
      this.kick();
    }
  }

  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    // flushLoop takes what waits before its first await, so this loop starts one flush per round.
    while (this.flushing.size < (this.opts.maxInFlight ?? 1) && (this.waiting.length > 0 || this.claimWanted)) {
      const flush: Promise<void> = this.flushLoop().finally(() => {
        this.flushing.delete(flush);
        this.opts.onFlushEnd?.();
        // Outcomes that arrived during the call, below the threshold, wait for their delay.
        if (this.waiting.length > 0 || this.claimWanted) {
          if (this.closing || this.claimWanted || this.waiting.length >= this.opts.flushAt) this.kick();
          else this.timer ??= setTimeout(() => this.kick(), this.opts.flushDelayMs);
        }
      });
      this.flushing.add(flush);
    }
  }

  private async flushLoop(): Promise<void> {
    let batch = this.waiting.splice(0);
    const claimWanted = this.claimWanted;
    this.claimWanted = false;
    for (let attempt = 0; ; attempt++) {
      const claimLimit = this.closing || !(claimWanted || batch.length > 0) ? 0 : this.opts.room(this.claimingJobs);
      if (batch.length === 0 && claimLimit === 0) return;
      this.claimingJobs += claimLimit;
      try {
        const result = await this.send(batch.map((w) => w.entry), claimLimit).finally(() => {
          this.claimingJobs -= claimLimit;
        });
        this.opts.onRecorded(
          batch.map((w) => w.entry),
          result,
          claimLimit,
        );
        return;
      } catch (err) {
        const transient = isTransientDbError(err);
        if (transient) this.opts.metrics.add(Metric.DatabaseErrors, 1);
        this.opts.logger.warn('recording outcomes failed; will retry', {
          error: (err as Error).message,
          outcomes: batch.length,
          attempt: attempt + 1,
          transient,
        });
        // A conflict (serialization failure, deadlock) is a glitch until it repeats a third
        // time; the connection failing is an outage at once.
        if (transient && (attempt >= 2 || !isConflict(err))) this.opts.onDatabaseError?.(err);
        else if (attempt >= 2 && batch.length > 1) {
          // Not the database failing but, repeatedly, something in the batch
          // (a result the database refuses): record each alone, so one cannot
          // hold up the rest.
          await this.isolate(batch);
          return;
        } else if (attempt >= 2 && batch.length === 1) {
          batch = [{ ...batch[0]!, entry: unstorable(batch[0]!.entry, err) }];
        }
        await sleep((this.opts.retryDelayMs ?? defaultRetryDelay)(attempt));
        batch = this.giveUpLapsed([...batch, ...this.waiting.splice(0)]);
      }
    }
  }

  private async isolate(batch: Waiting[]): Promise<void> {
    for (const w of batch) {
      let one = [w];
      for (let attempt = 0; one.length > 0; attempt++) {
        try {
          const result = await this.send(one.map((x) => x.entry), 0);
          this.opts.onRecorded(one.map((x) => x.entry), result, 0);
          break;
        } catch (err) {
          if (isTransientDbError(err)) this.opts.metrics.add(Metric.DatabaseErrors, 1);
          this.opts.logger.warn('recording an outcome failed; will retry', { jobId: w.entry.id, error: (err as Error).message });
          if (!isTransientDbError(err) && attempt >= 2) one = [{ ...one[0]!, entry: unstorable(one[0]!.entry, err) }];
          await sleep((this.opts.retryDelayMs ?? defaultRetryDelay)(attempt));
          one = this.giveUpLapsed(one);
        }
      }
    }
  }

  private giveUpLapsed(batch: Waiting[]): Waiting[] {
    const now = Date.now();
    const lapsed = batch.filter((w) => w.deadline <= now);
    if (lapsed.length === 0) return batch;
    for (const { entry } of lapsed) {
      this.opts.logger.error('outcome lost: it could not be recorded before the lease lapsed; the reaper will run the job again', {
        jobId: entry.id,
        outcome: entry.type,
        ...describe(entry),
      });
    }
    this.opts.onGivenUp?.(lapsed.map((w) => w.entry));
    return batch.filter((w) => w.deadline > now);
  }

  private send(entries: Entry[], claimLimit: number): Promise<RecordResult> {
    const completed: Completion[] = [];
    const failed: Failure[] = [];
    const snoozed: Snooze[] = [];
    const released: Lease[] = [];
    for (const e of entries) {
      if (e.type === 'complete') completed.push({ id: e.id, token: e.token, result: e.result });
      else if (e.type === 'fail') failed.push({ id: e.id, token: e.token, error: e.error, retryable: e.retryable, clientCaused: e.clientCaused });
      else if (e.type === 'snooze') snoozed.push({ id: e.id, token: e.token, seconds: e.seconds, reason: e.reason });
      else released.push({ id: e.id, token: e.token });
    }
    return recordOutcomes(
      this.opts.pool,
      { completed, failed, snoozed, released },
      {
        backoff: this.opts.backoff,
        maxSnoozes: this.opts.maxSnoozes,
        claim:
          claimLimit > 0 ? { workerId: this.opts.workerId, limit: claimLimit, leaseSeconds: this.opts.leaseSeconds, order: this.opts.order } : undefined,
      },
    );
  }
}

/** A completion whose result the database refuses, again and again, becomes a failure that says so. */
function unstorable(entry: Entry, err: unknown): Entry {
  if (entry.type !== 'complete') return entry;
  return { type: 'fail', id: entry.id, token: entry.token, retryable: false, error: `the result could not be stored: ${(err as Error).message}` };
}

/**
 * What the log keeps of an outcome given up. A result is not written out (it
 * is derived from the client's document, which is never logged): its size,
 * keys and digest identify it against a later attempt's.
 */
function describe(entry: Entry): Record<string, unknown> {
  switch (entry.type) {
    case 'complete': {
      const json = JSON.stringify(entry.result);
      return {
        resultBytes: Buffer.byteLength(json),
        resultKeys: Object.keys(entry.result),
        resultSha256: createHash('sha256').update(json).digest('hex'),
      };
    }
    case 'fail':
      return { error: entry.error, retryable: entry.retryable };
    case 'snooze':
      return { snoozeSeconds: entry.seconds, reason: entry.reason };
    default:
      return {};
  }
}

export type { ClaimedJob };
