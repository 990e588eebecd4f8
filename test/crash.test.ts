import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { uuidv7 } from '../lambda/core/ids';
import { logger } from '../lambda/core/logger';
import { RecordingMetrics } from '../lambda/core/metrics';
import { runProcessor } from '../lambda/core/processor';
import { processorConfig } from '../lambda/core/config';
import { enqueueJobs } from '../lambda/core/queue';
import { createTestDatabase, type TestDatabase } from './support/db';
import { fakeInvocation, installCompletionAudit } from './support/processor';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await installCompletionAudit(db.pool);
  await db.pool.query('CREATE TABLE work_started (job_id uuid NOT NULL, pid int NOT NULL)');
});
afterAll(async () => {
  await db.drop();
});

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const one = async (sql: string) => (await db.pool.query(sql)).rows[0];

it('loses no job and completes none twice when a worker process is SIGKILLed mid-batch', async () => {
  const total = 24;
  await enqueueJobs(db.pool, Array.from({ length: total }, () => ({ clientId: uuidv7() })));
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'support', 'worker-child.ts')], {
    env: { ...process.env, DATABASE_URL: db.url, POWERTOOLS_LOG_LEVEL: 'SILENT' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));

  // Kill it once it has completed some jobs and holds others mid-work.
  await waitFor(
    async () => {
      const r = await one(`SELECT (SELECT count(*) FROM completion_audit)::int AS done,
                                  (SELECT count(*) FROM summary_jobs WHERE status = 'running')::int AS running`);
      return r.done >= 4 && r.running >= 2;
    },
    30_000,
    `the child to be mid-batch (stderr: ${stderr})`,
  );
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');

  const orphaned = (await db.pool.query(`SELECT id FROM summary_jobs WHERE status = 'running'`)).rows.map((r) => r.id as string);
  expect(orphaned.length).toBeGreaterThan(0);
  const doneByChild = (await one(`SELECT count(*)::int AS n FROM completion_audit`)).n as number;

  // The child's leases lapse (backdated, not waited for); the next invocation reaps and finishes everything.
  await db.pool.query(`UPDATE summary_jobs SET lease_expires_at = now() - interval '1 second' WHERE status = 'running'`);
  const metrics = new RecordingMetrics();
  const run = await runProcessor(
    {
      pool: db.pool,
      config: processorConfig({ WORKER_ID: 'survivor', BATCH_SIZE: '10', CONCURRENCY: '4', JOB_TIMEOUT_MS: '5000' }),
      logger,
      metrics,
      work: async () => ({ by: 'survivor' }),
    },
    fakeInvocation(60_000),
  );
  expect(run.reaped).toBe(orphaned.length);
  expect(metrics.sum('JobsReaped')).toBe(orphaned.length);

  const statuses = await db.pool.query(`SELECT status, count(*)::int AS n FROM summary_jobs GROUP BY status`);
  expect(statuses.rows).toEqual([{ status: 'completed', n: total }]);
  const audit = await one(`SELECT count(*)::int AS n, count(DISTINCT job_id)::int AS d FROM completion_audit`);
  expect(audit).toEqual({ n: total, d: total });
  expect(run.completed).toBe(total - doneByChild);
  // The orphaned jobs ran a second attempt, under the survivor's lease.
  const retried = await db.pool.query(`SELECT attempts, result->>'by' AS by FROM summary_jobs WHERE id = ANY($1::uuid[])`, [orphaned]);
  expect(retried.rows.every((r) => r.attempts === 2 && r.by === 'survivor')).toBe(true);
});
