import { CronExpressionParser } from 'cron-parser';
import type { Pool } from 'pg';
import { withTransaction, type Db } from './db';
import { uuidv7 } from './ids';
import { enqueueJobs } from './queue';

/**
 * Recurring jobs: a cron schedule per client (a "global" schedule is one that
 * belongs to an operator's client). Each processor invocation enqueues what is
 * due. Missed ticks policy: when several ticks passed while nothing ran, ONE
 * job is enqueued, for the latest missed tick, and the rest are counted in
 * missed_ticks — a daily digest that was down for three days runs once, not
 * three times in a row.
 */

export interface Schedule {
  id: string;
  clientId: string;
  name: string;
  cron: string;
  timezone: string;
  jobType: string;
  payload: Record<string, unknown>;
  priority: number;
  nextRunAt: Date;
  lastTickAt: Date | null;
  lastJobId: string | null;
  missedTicks: number;
}

interface ScheduleRow {
  id: string;
  client_id: string;
  name: string;
  cron: string;
  timezone: string;
  job_type: string;
  payload: Record<string, unknown>;
  priority: number;
  next_run_at: Date;
  last_tick_at: Date | null;
  last_job_id: string | null;
  missed_ticks: string;
}

const toSchedule = (r: ScheduleRow): Schedule => ({
  id: r.id,
  clientId: r.client_id,
  name: r.name,
  cron: r.cron,
  timezone: r.timezone,
  jobType: r.job_type,
  payload: r.payload,
  priority: r.priority,
  nextRunAt: r.next_run_at,
  lastTickAt: r.last_tick_at,
  lastJobId: r.last_job_id,
  missedTicks: Number(r.missed_ticks),
});

/** A schedule that cannot run; `field` names what is wrong (`cron` or `timezone`). */
export class ScheduleError extends Error {
  override name = 'ScheduleError';
  constructor(
    readonly field: 'cron' | 'timezone',
    message: string,
  ) {
    super(message);
  }
}

/** Whether the runtime's time zone database (what cron-parser computes ticks with) knows the name. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** The first tick strictly after `after`; throws ScheduleError for a bad expression or time zone. */
export function nextTick(cron: string, timezone: string, after: Date): Date {
  // Checked first: cron-parser reports an unknown zone as "CronDate: unhandled timestamp".
  if (!isTimeZone(timezone)) {
    throw new ScheduleError('timezone', `timezone "${timezone.slice(0, 64)}" is not an IANA time zone name (e.g. Europe/Paris)`);
  }
  try {
    return CronExpressionParser.parse(cron, { currentDate: after, tz: timezone }).next().toDate();
  } catch (err) {
    throw new ScheduleError('cron', `cron "${cron.slice(0, 100)}" is not a valid schedule: ${(err as Error).message}`);
  }
}

export interface NewSchedule {
  clientId: string;
  name: string;
  cron: string;
  timezone?: string;
  jobType?: string;
  payload?: Record<string, unknown>;
  priority?: number;
}

/** Creates or replaces a client's schedule; the first run is the next tick from now. */
export async function upsertSchedule(db: Db, s: NewSchedule, now = new Date()): Promise<Schedule> {
  const timezone = s.timezone ?? 'UTC';
  const first = nextTick(s.cron, timezone, now);
  const { rows } = await db.query<ScheduleRow>(
    `INSERT INTO recurring_jobs (id, client_id, name, cron, timezone, job_type, payload, priority, next_run_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (client_id, name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone,
       job_type = excluded.job_type, payload = excluded.payload, priority = excluded.priority, next_run_at = excluded.next_run_at
     RETURNING *`,
    [uuidv7(), s.clientId, s.name, s.cron, timezone, s.jobType ?? 'digest', JSON.stringify(s.payload ?? {}), s.priority ?? 0, first],
  );
  return toSchedule(rows[0]!);
}

export async function listSchedules(db: Db, clientId: string): Promise<Schedule[]> {
  const { rows } = await db.query<ScheduleRow>(`SELECT * FROM recurring_jobs WHERE client_id = $1 ORDER BY name`, [clientId]);
  return rows.map(toSchedule);
}

export async function deleteSchedule(db: Db, clientId: string, name: string): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM recurring_jobs WHERE client_id = $1 AND name = $2`, [clientId, name]);
  return rowCount === 1;
}

/**
 * Enqueues one job per due schedule. SKIP LOCKED lets concurrent processors
 * share the due schedules; the tick's idempotency key makes a second enqueue
 * of the same tick return the first job instead of a duplicate.
 */
export async function enqueueDueSchedules(pool: Pool, now = new Date(), limit = 100): Promise<number> {
  return withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<ScheduleRow>(
      `SELECT * FROM recurring_jobs WHERE next_run_at <= $1 ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [now, limit],
    );
    let enqueued = 0;
    for (const row of rows) {
      const s = toSchedule(row);
      // Walk to the latest tick that is due; every earlier one is a missed tick.
      let tick = s.nextRunAt;
      let missed = 0;
      for (let next = nextTick(s.cron, s.timezone, tick); next <= now; next = nextTick(s.cron, s.timezone, tick)) {
        tick = next;
        missed += 1;
        if (missed > 100_000) break;
      }
      const [result] = await enqueueJobs(tx, [
        {
          clientId: s.clientId,
          jobType: s.jobType,
          payload: { ...s.payload, schedule: s.name, tick: tick.toISOString() },
          priority: s.priority,
          idempotencyKey: `recurring:${s.id}:${tick.toISOString()}`,
        },
      ]);
      if (result!.created) enqueued += 1;
      await tx.query(
        `UPDATE recurring_jobs SET next_run_at = $2, last_tick_at = $3, last_job_id = $4, missed_ticks = missed_ticks + $5 WHERE id = $1`,
        [s.id, nextTick(s.cron, s.timezone, tick), tick, result!.job.id, missed],
      );
    }
    return enqueued;
  });
}
