import type { Client, Pool, PoolClient } from 'pg';
import { Metric } from './alarm-rules';
import { isTransientDbError } from './db';
import type { Logger } from './logger';
import type { LeaseWatch } from './executor';
import type { MetricsSink } from './metrics';
import { heartbeatJobs, reportProgress, type ClaimedJob, type Lease, type ProgressUpdate } from './queue';

/**
 * Keeps a worker's leases alive and writes its jobs' progress. Heartbeats go
 * over a connection of their own, opened at the first beat (most runs end
 * before one is due), so they never queue behind claims, completions or the
 * jobs' own queries in a pool of two. Progress is coalesced per job and
 * written through the pool in one statement at most every `progressMs`.
 */
export interface LeaseKeeperOptions {
  pool: Pool;
  leaseSeconds: number;
  heartbeatMs: number;
  progressMs?: number;
  logger: Logger;
  metrics: MetricsSink;
  /** Called with leases found lost (the job was reaped, maybe claimed again). */
  onLost: (ids: string[]) => void;
  /** Called when a heartbeat fails for a database fault. */
  onDatabaseError: (err: unknown) => void;
}

interface Held {
  lease: Lease;
  /** Local time by which the lease lapses unless extended (conservative: measured from the send). */
  expiresAt: number;
  watch: LeaseWatch;
}

export class LeaseKeeper {
  private readonly held = new Map<string, Held>();
  private readonly progressDue = new Map<string, ProgressUpdate>();
  private heartbeatTimer?: NodeJS.Timeout;
  private progressTimer?: NodeJS.Timeout;
  private connection?: Promise<Client>;
  private beating?: Promise<void>;
  private writingProgress?: Promise<void>;

  constructor(private readonly opts: LeaseKeeperOptions) {}

  start(): void {
    this.heartbeatTimer = setInterval(() => void this.beat(), this.opts.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  /** Starts keeping the job's lease; the watch is marked when the lease is found lost. */
  hold(job: ClaimedJob, now = Date.now()): LeaseWatch {
    const watch: LeaseWatch = { lost: false };
    const leaseMs = job.leaseExpiresAt ? Math.min(job.leaseExpiresAt.getTime() - now, this.opts.leaseSeconds * 1000) : this.opts.leaseSeconds * 1000;
    this.held.set(job.id, { lease: { id: job.id, token: job.leaseToken }, expiresAt: now + leaseMs, watch });
    return watch;
  }

  /** Stops keeping the lease; returns when it lapses unless extended. */
  drop(id: string): number {
    const held = this.held.get(id);
    this.held.delete(id);
    this.progressDue.delete(id);
    return held?.expiresAt ?? Date.now();
  }

  progress(lease: Lease, percent: number, message?: string): void {
    if (!this.held.has(lease.id)) return;
    this.progressDue.set(lease.id, { ...lease, percent, message: message ?? null });
    this.progressTimer ??= setTimeout(() => {
      this.progressTimer = undefined;
      this.writingProgress = this.writeProgress();
    }, this.opts.progressMs ?? 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
    await this.beating;
    await this.writingProgress;
    const connection = this.connection;
    this.connection = undefined;
    if (connection) await connection.then((c) => c.end()).catch(() => undefined);
  }

  private async writeProgress(): Promise<void> {
    const updates = [...this.progressDue.values()];
    this.progressDue.clear();
    try {
      await reportProgress(this.opts.pool, updates);
    } catch (err) {
      // Progress is advisory: the next update or the outcome supersedes it.
      this.opts.logger.warn('progress could not be written', { error: (err as Error).message, jobs: updates.length });
    }
  }

  private async beat(): Promise<void> {
    if (this.beating || this.held.size === 0) return;
    const entries = [...this.held.values()];
    const sentAt = Date.now();
    this.beating = (async () => {
      try {
        const db = await this.client();
        // A client of its own, not the pool's: typed as one for the shared query signature.
        const { lost } = await heartbeatJobs(db as PoolClient, entries.map((e) => e.lease), this.opts.leaseSeconds);
        const lostSet = new Set(lost);
        for (const e of entries) if (!lostSet.has(e.lease.id)) e.expiresAt = sentAt + this.opts.leaseSeconds * 1000;
        const gone = lost.filter((id) => this.held.has(id));
        for (const id of gone) {
          const held = this.held.get(id)!;
          this.held.delete(id);
          this.opts.logger.warn('lease lost; abandoning the job', { jobId: id });
          held.watch.lost = true;
          held.watch.onLost?.();
        }
        if (gone.length > 0) this.opts.onLost(gone);
      } catch (err) {
        const connection = this.connection;
        this.connection = undefined;
        connection?.then((c) => c.end()).catch(() => undefined);
        this.opts.logger.error('heartbeat failed', err as Error);
        if (isTransientDbError(err)) {
          this.opts.metrics.add(Metric.DatabaseErrors, 1);
          this.opts.onDatabaseError(err);
        }
      } finally {
        this.beating = undefined;
      }
    })();
    await this.beating;
  }

  /** The heartbeat's own connection, made like the pool's (same settings, password source and error handling). */
  private client(): Promise<Client> {
    if (!this.connection) {
      const options = this.opts.pool.options as ConstructorParameters<typeof Client>[0] & { Client?: typeof Client };
      const ClientClass = options.Client ?? (require('pg') as typeof import('pg')).Client;
      const client = new ClientClass(options);
      client.on('error', () => undefined);
      this.connection = client.connect().then(() => client);
      this.connection.catch(() => {
        this.connection = undefined;
      });
    }
    return this.connection;
  }
}
