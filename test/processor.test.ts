import { processorConfig, type ProcessorConfig } from '../lambda/core/config';
import { permanent } from '../lambda/core/errors';
import { uuidv7 } from '../lambda/core/ids';
import { logger } from '../lambda/core/logger';
import { RecordingMetrics } from '../lambda/core/metrics';
import { CLAIM_POLL_MS, claimUntilOf, runProcessor, type JobWork, type ProcessorDeps } from '../lambda/core/processor';
import { enqueueJobs, getJob } from '../lambda/core/queue';
import { createPool } from '../lambda/core/db';
import { createTestDatabase, type TestDatabase } from './support/db';
import { fakeInvocation, installCompletionAudit } from './support/processor';

const CLIENT = uuidv7();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ poolMax: 20 });
  await installCompletionAudit(db.pool);
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE summary_jobs, job_dependencies, completion_audit, rate_limits');
});

function config(overrides: Record<string, string> = {}): ProcessorConfig {
  return processorConfig({
    BATCH_SIZE: '10',
    CONCURRENCY: '4',
    LEASE_SECONDS: '30',
    HEARTBEAT_SECONDS: '5',
    JOB_TIMEOUT_MS: '2000',
    SAFETY_MARGIN_MS: '2500',
    WORKER_ID: 'test',
    ...overrides,
  });
}

function deps(work: JobWork, cfg = config(), metrics = new RecordingMetrics()): ProcessorDeps & { metrics: RecordingMetrics } {
  return { pool: db.pool, config: cfg, logger, metrics, work, backoff: { baseSeconds: 0, maxSeconds: 0 } };
}

const enqueue = (n: number, extra = {}) => enqueueJobs(db.pool, Array.from({ length: n }, (_, i) => ({ clientId: CLIENT, payload: { n: i }, ...extra })));
const statuses = async () =>
  Object.fromEntries((await db.pool.query(`SELECT status, count(*)::int AS n FROM summary_jobs GROUP BY status`)).rows.map((r) => [r.status, r.n]));

describe('runProcessor', () => {
  it.each(['fair', 'priority'])('drains a batch, stores each result, and emits its metrics (%s claim)', async (mode) => {
    await enqueue(35);
    const d = deps(async (job) => ({ summary: `job ${String(job.payload.n)}` }), config({ CLAIM_MODE: mode }));
    const run = await runProcessor(d, fakeInvocation(60_000));
    expect(run).toMatchObject({ claimed: 35, completed: 35, retried: 0, failed: 0, stoppedBy: 'empty' });
    expect(await statuses()).toEqual({ completed: 35 });
    const { rows } = await db.pool.query(`SELECT payload->>'n' AS n, result->>'summary' AS s FROM summary_jobs`);
    expect(rows.every((r) => r.s === `job ${r.n}`)).toBe(true);
    expect(d.metrics.sum('JobsCompleted')).toBe(35);
    expect(d.metrics.sum('ProcessorInvocations')).toBe(1);
    expect(d.metrics.points.filter((p) => p.name === 'ProcessingDuration')).toHaveLength(35);
    expect(d.metrics.points.find((p) => p.name === 'QueueDepth')?.value).toBe(0);
  });

  it.each(['fair', 'priority'])('runs a chain of dependent jobs in one invocation (%s claim)', async (mode) => {
    const [first] = await enqueue(1);
    const [second] = await enqueueJobs(db.pool, [{ clientId: CLIENT, dependsOn: [first!.job.id] }]);
    const [third] = await enqueueJobs(db.pool, [{ clientId: CLIENT, dependsOn: [second!.job.id] }]);
    const order: string[] = [];
    const run = await runProcessor(
      deps(async (job) => {
        order.push(job.id);
        return {};
      }, config({ CLAIM_MODE: mode })),
      fakeInvocation(60_000),
    );
    expect(order).toEqual([first!.job.id, second!.job.id, third!.job.id]);
    expect(run).toMatchObject({ claimed: 3, completed: 3, stoppedBy: 'empty' });
  });

  it('starts a small client\'s jobs interleaved with a big client\'s backlog, in the fair claim\'s order', async () => {
    const big = uuidv7();
    const small = uuidv7();
    await enqueueJobs(db.pool, Array.from({ length: 30 }, () => ({ clientId: big })));
    await enqueueJobs(db.pool, Array.from({ length: 5 }, () => ({ clientId: small })));
    const starts: string[] = [];
    await runProcessor(
      deps(async (job) => {
        starts.push(job.clientId === small ? 's' : 'B');
        return {};
      }, config({ BATCH_SIZE: '10', CONCURRENCY: '1' })),
      fakeInvocation(60_000),
    );
    expect(starts.join('')).toBe(`BsBsBsBsBs${'B'.repeat(25)}`);
    // As the table records it: every small job started no later than the big client's sixth.
    const { rows } = await db.pool.query(
      `SELECT client_id = $1 AS small, started_at FROM summary_jobs ORDER BY started_at, client_id = $1 DESC`,
      [small],
    );
    const sixthBig = rows.filter((r) => !r.small)[5].started_at.getTime();
    expect(rows.filter((r) => r.small).every((r) => r.started_at.getTime() <= sixthBig)).toBe(true);
  });

  it('keeps heartbeating while the pool\'s every connection is busy (heartbeats have a connection of their own)', async () => {
    const { job } = (await enqueue(1))[0]!;
    const pool = createPool({ connectionString: db.url, max: 1 });
    try {
      const run = await runProcessor(
        {
          ...deps(async () => {
            // The job holds the pool's only connection for longer than a heartbeat interval.
            const held = await pool.connect();
            try {
              const before = (await held.query(`SELECT heartbeat_at FROM summary_jobs WHERE id = $1`, [job.id])).rows[0].heartbeat_at as Date;
              await held.query(`SELECT pg_sleep(1.5)`);
              const after = (await held.query(`SELECT heartbeat_at FROM summary_jobs WHERE id = $1`, [job.id])).rows[0].heartbeat_at as Date;
              return { beats: after.getTime() > before.getTime() };
            } finally {
              held.release();
            }
          }, config({ HEARTBEAT_SECONDS: '1', LEASE_SECONDS: '3' })),
          pool,
        },
        fakeInvocation(60_000),
      );
      expect(run.completed).toBe(1);
    } finally {
      await pool.end();
    }
    expect(await getJob(db.pool, job.id, null)).toMatchObject({ status: 'completed', result: { beats: true } });
  });

  it('never runs more jobs at once than the configured concurrency', async () => {
    await enqueue(30);
    let now = 0;
    let peak = 0;
    await runProcessor(
      deps(async () => {
        peak = Math.max(peak, ++now);
        await sleep(20);
        now -= 1;
        return {};
      }, config({ CONCURRENCY: '3' })),
      fakeInvocation(60_000),
    );
    expect(peak).toBe(3);
  });

  it('retries a throwing job with backoff, then fails it for good with the metrics and the error kept', async () => {
    const { job } = (await enqueue(1, { maxAttempts: 3 }))[0]!;
    const d = deps(async () => {
      throw new Error('model exploded');
    });
    const run = await runProcessor(d, fakeInvocation(60_000));
    expect(run).toMatchObject({ retried: 2, failed: 1, completed: 0 });
    expect(await getJob(db.pool, job.id, null)).toMatchObject({ status: 'failed', attempts: 3, lastError: 'model exploded' });
    expect(d.metrics.sum('JobsRetried')).toBe(2);
    const failed = d.metrics.points.filter((p) => p.name === 'JobsFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.context).toMatchObject({ jobId: job.id, clientId: CLIENT, error: 'model exploded' });
  });

  it('fails a permanent error at once and keeps the rest of the batch going', async () => {
    await enqueue(6);
    const run = await runProcessor(
      deps(async (job) => {
        if (job.payload.n === 2) throw permanent('document is empty');
        return { ok: true };
      }),
      fakeInvocation(60_000),
    );
    expect(run).toMatchObject({ completed: 5, failed: 1, retried: 0 });
    expect(await statuses()).toEqual({ completed: 5, failed: 1 });
  });

  it('cuts off a hung job at the per-job timeout and treats it as a failure', async () => {
    const { job } = (await enqueue(1, { maxAttempts: 1 }))[0]!;
    let aborted = false;
    const run = await runProcessor(
      deps(
        (_job, ctx) =>
          new Promise(() => {
            ctx.signal.addEventListener('abort', () => (aborted = true));
          }),
        config({ JOB_TIMEOUT_MS: '300' }),
      ),
      fakeInvocation(60_000),
    );
    expect(run.failed).toBe(1);
    expect(aborted).toBe(true);
    expect(await getJob(db.pool, job.id, null)).toMatchObject({ status: 'failed', lastError: 'job timed out after 300 ms' });
  });

  it('hands the work a context it may copy, with the signal and progress and nothing else', async () => {
    const { job } = (await enqueue(1))[0]!;
    let keys: string[] = [];
    const run = await runProcessor(
      deps(async (_job, ctx) => {
        const copy = { ...ctx };
        keys = Object.keys(copy).sort();
        expect(copy.signal).toBeInstanceOf(AbortSignal);
        await copy.progress(50, 'half way');
        return { ok: true };
      }),
      fakeInvocation(60_000),
    );
    expect(run.completed).toBe(1);
    expect(keys).toEqual(['progress', 'signal']);
    expect(await getJob(db.pool, job.id, null)).toMatchObject({ status: 'completed', result: { ok: true } });
  });

  it('abandons a job whose lease was taken over, and never writes its result', async () => {
    const { job } = (await enqueue(1))[0]!;
    let signalled = false;
    const run = await runProcessor(
      deps(
        async (_job, ctx) => {
          // Another worker takes the job over (as after a reap and a new claim).
          await db.pool.query(`UPDATE summary_jobs SET lease_token = gen_random_uuid(), lease_owner = 'thief' WHERE id = $1`, [job.id]);
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
          signalled = true;
          return { summary: 'from the old worker' };
        },
        config({ HEARTBEAT_SECONDS: '1', LEASE_SECONDS: '4' }),
      ),
      fakeInvocation(60_000),
    );
    expect(signalled).toBe(true);
    expect(run).toMatchObject({ completed: 0, lost: 1 });
    expect(await getJob(db.pool, job.id, null)).toMatchObject({ status: 'running', leaseOwner: 'thief', result: null });
  });

  it('does not complete a job whose lease was stolen while its work finished', async () => {
    const { job } = (await enqueue(1))[0]!;
    const run = await runProcessor(
      deps(async () => {
        await db.pool.query(`UPDATE summary_jobs SET lease_token = gen_random_uuid(), lease_owner = 'thief' WHERE id = $1`, [job.id]);
        return { summary: 'late' };
      }),
      fakeInvocation(60_000),
    );
    expect(run).toMatchObject({ completed: 0, lost: 1 });
    expect(await getJob(db.pool, job.id, null)).toMatchObject({ status: 'running', result: null });
  });

  it('never processes a job twice with two invocations running at once over thousands of jobs', async () => {
    const total = 4000;
    for (let i = 0; i < total; i += 1000) await enqueue(1000);
    const seen = new Map<string, number>();
    const work: JobWork = async (job) => {
      seen.set(job.id, (seen.get(job.id) ?? 0) + 1);
      if (seen.size % 50 === 0) await sleep(1);
      return { ok: 1 };
    };
    const poolA = createPool({ connectionString: db.url, max: 4 });
    const poolB = createPool({ connectionString: db.url, max: 4 });
    try {
      const cfg = config({ BATCH_SIZE: '50', CONCURRENCY: '16' });
      const [a, b] = await Promise.all([
        runProcessor({ ...deps(work, { ...cfg, workerId: 'a' }), pool: poolA }, fakeInvocation(120_000)),
        runProcessor({ ...deps(work, { ...cfg, workerId: 'b' }), pool: poolB }, fakeInvocation(120_000)),
      ]);
      expect(a.completed + b.completed).toBe(total);
      expect(a.completed).toBeGreaterThan(0);
      expect(b.completed).toBeGreaterThan(0);
    } finally {
      await Promise.all([poolA.end(), poolB.end()]);
    }
    expect(seen.size).toBe(total);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    const audit = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT job_id)::int AS d FROM completion_audit`);
    expect(audit.rows[0]).toEqual({ n: total, d: total });
  });

  it('stops claiming when the remaining time falls below the safety margin, releasing what it had not started', async () => {
    await enqueue(40);
    const invocation = fakeInvocation(3_000);
    const run = await runProcessor(
      deps(
        async () => {
          await sleep(100);
          return {};
        },
        config({ CONCURRENCY: '2', BATCH_SIZE: '10', JOB_TIMEOUT_MS: '500', SAFETY_MARGIN_MS: '2000' }),
      ),
      invocation,
    );
    expect(run.stoppedBy).toBe('time');
    expect(run.completed).toBeGreaterThan(0);
    expect(run.completed).toBeLessThan(40);
    // Nothing is left running, nothing claimed-but-unstarted lost an attempt.
    const s = await statuses();
    expect(s.running).toBeUndefined();
    expect(s.completed + s.queued).toBe(40);
    const { rows } = await db.pool.query(`SELECT max(attempts)::int AS a FROM summary_jobs WHERE status = 'queued'`);
    expect(rows[0].a).toBe(0);
    expect(invocation.getRemainingTimeInMillis()).toBeGreaterThan(1000);
  });

  it('reaps expired leases at the start of each run and reports them', async () => {
    await enqueue(3);
    await db.pool.query(
      `UPDATE summary_jobs SET status = 'running', attempts = 1, lease_token = gen_random_uuid(), lease_owner = 'dead',
         lease_expires_at = now() - interval '1 minute'`,
    );
    const d = deps(async () => ({ ok: true }));
    const run = await runProcessor(d, fakeInvocation(60_000));
    expect(run).toMatchObject({ reaped: 3, completed: 3 });
    expect(d.metrics.sum('JobsReaped')).toBe(3);
    const { rows } = await db.pool.query(`SELECT DISTINCT attempts FROM summary_jobs`);
    expect(rows).toEqual([{ attempts: 2 }]);
  });

  it('stops claiming on shutdown and lets running jobs finish', async () => {
    await enqueue(20);
    const shutdown = new AbortController();
    const run = await runProcessor(
      deps(async () => {
        shutdown.abort();
        await sleep(50);
        return {};
      }, config({ CONCURRENCY: '2', BATCH_SIZE: '10' })),
      fakeInvocation(60_000),
      shutdown.signal,
    );
    expect(run.stoppedBy).toBe('shutdown');
    expect(run.completed).toBe(2);
    expect(run.released).toBe(8);
    expect(await statuses()).toEqual({ completed: 2, queued: 18 });
  });
});

describe('an upload nudge\'s claim window', () => {
  it('reads claimUntil from an upload\'s nudge only', () => {
    expect(claimUntilOf({ source: 'upload', sentAt: 1_000, claimUntil: 1_500 })).toBe(1_500);
    // The schedule's EventBridge event, a test invoke, junk: no window.
    expect(claimUntilOf({ source: 'aws.events', 'detail-type': 'Scheduled Event' })).toBeUndefined();
    expect(claimUntilOf({ source: 'upload', claimUntil: '1500' })).toBeUndefined();
    expect(claimUntilOf({ source: 'upload', claimUntil: Number.NaN })).toBeUndefined();
    expect(claimUntilOf(null)).toBeUndefined();
    expect(claimUntilOf('upload')).toBeUndefined();
  });

  it.each(['fair', 'priority'])('keeps claiming until claimUntil, so a job that becomes runnable inside the window runs on this run (%s claim)', async (mode) => {
    // Runnable 300 ms from now: the run's first claims find nothing, as when the
    // last uploads of a burst arrive after the nudged run started.
    const [late] = await enqueue(1, { runAt: new Date(Date.now() + 300) });
    const started = Date.now();
    const run = await runProcessor(deps(async () => ({ summary: 'late' }), config({ CLAIM_MODE: mode })), fakeInvocation(60_000), undefined, {
      claimUntil: started + 600,
    });
    expect(run).toMatchObject({ claimed: 1, completed: 1, stoppedBy: 'empty' });
    expect((await getJob(db.pool, late!.job.id, null))!.status).toBe('completed');
    // It ended once the window had passed, and not much later.
    expect(Date.now()).toBeGreaterThanOrEqual(started + 600);
    expect(Date.now() - started).toBeLessThan(600 + 10 * CLAIM_POLL_MS);
  });

  it('without a window, or with one already past, a claim that finds nothing ends the run', async () => {
    const [late] = await enqueue(1, { runAt: new Date(Date.now() + 300) });
    const started = Date.now();
    const plain = await runProcessor(deps(async () => ({})), fakeInvocation(60_000));
    const past = await runProcessor(deps(async () => ({})), fakeInvocation(60_000), undefined, { claimUntil: started - 1 });
    expect(plain).toMatchObject({ claimed: 0, stoppedBy: 'empty' });
    expect(past).toMatchObject({ claimed: 0, stoppedBy: 'empty' });
    expect(Date.now() - started).toBeLessThan(300);
    expect((await getJob(db.pool, late!.job.id, null))!.status).toBe('queued');
  });

  it('ends a run waiting in its window at shutdown', async () => {
    const shutdown = new AbortController();
    const started = Date.now();
    const waiting = runProcessor(deps(async () => ({})), fakeInvocation(60_000), shutdown.signal, { claimUntil: started + 60_000 });
    // After its first claims found nothing: the run is waiting for the next look.
    setTimeout(() => shutdown.abort(), 2 * CLAIM_POLL_MS);
    expect(await waiting).toMatchObject({ claimed: 0, stoppedBy: 'shutdown' });
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
