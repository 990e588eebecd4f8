import type { Pool } from 'pg';
import { processorConfig } from '../lambda/core/config';
import { uuidv7 } from '../lambda/core/ids';
import { logger } from '../lambda/core/logger';
import { RecordingMetrics } from '../lambda/core/metrics';
import { runProcessor, type JobWork } from '../lambda/core/processor';
import { enqueueJobs, getJob } from '../lambda/core/queue';
import { createTestDatabase, type TestDatabase } from './support/db';
import { fakeInvocation } from './support/processor';

/**
 * The database going away mid-run: a pool whose queries fail, as they do when
 * connections are refused, until the test brings it back. Jobs claimed but not
 * started go back without spending an attempt, an attempt the outage cut short
 * is not counted, and a finished job's result is recorded once the database is back.
 */

const CLIENT = uuidv7();
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ poolMax: 10 });
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE summary_jobs, job_dependencies');
});

/** The pool, but every query fails with a lost connection while `down` is set. */
function flakyPool(pool: Pool): { pool: Pool; setDown: (down: boolean) => void } {
  let down = false;
  const wrapped = new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop === 'query') {
        return (...args: Parameters<Pool['query']>) =>
          down
            ? Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))
            : (target.query as (...a: unknown[]) => unknown)(...args);
      }
      return Reflect.get(target, prop, receiver);
    },
  });
  return { pool: wrapped, setDown: (d) => (down = d) };
}

const config = () =>
  processorConfig({ BATCH_SIZE: '10', CONCURRENCY: '2', LEASE_SECONDS: '30', HEARTBEAT_SECONDS: '5', JOB_TIMEOUT_MS: '5000', SAFETY_MARGIN_MS: '5500', WORKER_ID: 'outage' });

it('releases unstarted jobs without spending an attempt, does not count the interrupted attempt, and records a finished result after the outage', async () => {
  const jobs = await enqueueJobs(db.pool, Array.from({ length: 20 }, () => ({ clientId: CLIENT, maxAttempts: 1 })));
  const flaky = flakyPool(db.pool);
  let started = 0;
  let interrupted = '';
  let finished = '';
  const work: JobWork = async (job) => {
    started += 1;
    if (started === 1) {
      // Loads what it needs, then the outage begins while it works; it finishes regardless.
      finished = job.id;
      await flaky.pool.query('SELECT 1');
      flaky.setDown(true);
      setTimeout(() => flaky.setDown(false), 800);
      await new Promise((r) => setTimeout(r, 100));
      return { done: true };
    }
    // Started alongside; its own query meets the outage.
    interrupted = job.id;
    await new Promise((r) => setTimeout(r, 30));
    await flaky.pool.query('SELECT 1');
    return {};
  };
  const metrics = new RecordingMetrics();
  const run = await runProcessor({ pool: flaky.pool, config: config(), logger, metrics, work, backoff: { baseSeconds: 0, maxSeconds: 0 } }, fakeInvocation(60_000));

  expect(run).toMatchObject({ stoppedBy: 'database', claimed: 10, completed: 1, snoozed: 1, released: 8, failed: 0 });
  expect(started).toBe(2);
  expect(metrics.sum('ProcessorRunsSucceeded')).toBe(1);
  expect(metrics.sum('DatabaseErrors')).toBeGreaterThanOrEqual(3);
  expect(metrics.sum('JobsFailed')).toBe(0);

  // The attempt the outage cut short is not spent (maxAttempts 1, still queued), and is due again soon.
  expect(await getJob(db.pool, interrupted, null)).toMatchObject({ status: 'queued', attempts: 0, snoozes: 1 });
  expect(await getJob(db.pool, finished, null)).toMatchObject({ status: 'completed', attempts: 1, result: { done: true } });
  const { rows } = await db.pool.query(`SELECT status, attempts, count(*)::int AS n FROM summary_jobs GROUP BY 1, 2 ORDER BY 1, 2`);
  expect(rows).toEqual([
    { status: 'completed', attempts: 1, n: 1 },
    { status: 'queued', attempts: 0, n: 19 },
  ]);

  // The next run (the snoozed job's delay backdated, not waited for) finishes everything.
  await db.pool.query(`UPDATE summary_jobs SET run_at = now() WHERE id = $1`, [interrupted]);
  const next = await runProcessor({ pool: db.pool, config: config(), logger, metrics: new RecordingMetrics(), work: async () => ({}) }, fakeInvocation(60_000));
  expect(next.completed).toBe(19);
  const done = await db.pool.query(`SELECT count(*)::int AS n FROM summary_jobs WHERE status = 'completed' AND id = ANY($1::uuid[])`, [jobs.map((j) => j.job.id)]);
  expect(done.rows[0].n).toBe(20);
});

it('reports no successful run and counts a database error when the database cannot be reached at all', async () => {
  await enqueueJobs(db.pool, [{ clientId: CLIENT }]);
  const flaky = flakyPool(db.pool);
  flaky.setDown(true);
  const metrics = new RecordingMetrics();
  const run = await runProcessor({ pool: flaky.pool, config: config(), logger, metrics, work: async () => ({}) }, fakeInvocation(60_000));
  expect(run).toMatchObject({ stoppedBy: 'database', claimed: 0 });
  expect(metrics.sum('ProcessorInvocations')).toBe(1);
  expect(metrics.sum('ProcessorRunsSucceeded')).toBe(0);
  expect(metrics.sum('DatabaseErrors')).toBe(1);
});
