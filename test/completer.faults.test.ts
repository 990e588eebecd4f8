import type { Pool } from 'pg';
import { processorConfig, type ProcessorConfig } from '../lambda/core/config';
import { retryable, snooze } from '../lambda/core/errors';
import { uuidv7 } from '../lambda/core/ids';
import { logger } from '../lambda/core/logger';
import { RecordingMetrics } from '../lambda/core/metrics';
import { runProcessor, type JobWork, type ProcessorDeps } from '../lambda/core/processor';
import { enqueueJobs, getJob } from '../lambda/core/queue';
import { createTestDatabase, type TestDatabase } from './support/db';
import { fakeInvocation, installCompletionAudit } from './support/processor';

/**
 * Faults at every write-back of the completer: a trigger makes the N-th
 * completion, failure, snooze, release of an unstarted job or dependency
 * release raise (a serialization failure, as a failover or a conflict would),
 * once or for as long as the test says. The whole batch's transaction rolls
 * back and the completer sends it again: no job may run twice or be lost, and
 * every dependent must be released exactly once.
 */

const CLIENT = uuidv7();
let db: TestDatabase;

const KINDS = ['complete', 'fail', 'snooze', 'release', 'dependency'] as const;
type Kind = (typeof KINDS)[number];

async function installFaults(pool: Pool): Promise<void> {
  // Sequences count the writes: nextval survives the rollback the fault causes,
  // so a fault planned "once" fires once.
  await pool.query(`
    CREATE TABLE fault_plan (kind text PRIMARY KEY, nth integer NOT NULL, persistent boolean NOT NULL DEFAULT false);
    ${KINDS.map((k) => `CREATE SEQUENCE fault_seen_${k};`).join('\n')}
    CREATE TABLE dependency_releases (job_id uuid NOT NULL, pending_before integer, pending_after integer);
    CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      k text;
      n bigint;
      plan fault_plan;
    BEGIN
      k := CASE
        WHEN OLD.status = 'running' AND NEW.status = 'completed' THEN 'complete'
        WHEN OLD.status = 'running' AND NEW.status = 'queued' AND NEW.snoozes > OLD.snoozes THEN 'snooze'
        WHEN OLD.status = 'running' AND NEW.status = 'queued' AND NEW.attempts < OLD.attempts THEN 'release'
        WHEN OLD.status = 'running' AND NEW.status IN ('queued', 'failed') THEN 'fail'
        WHEN NEW.pending_dependencies < OLD.pending_dependencies THEN 'dependency'
      END;
      IF k IS NULL THEN RETURN NEW; END IF;
      n := nextval('fault_seen_' || k);
      SELECT * INTO plan FROM fault_plan WHERE kind = k;
      IF FOUND AND (n = plan.nth OR (plan.persistent AND n >= plan.nth)) THEN
        RAISE EXCEPTION 'injected fault at % number %', k, n USING ERRCODE = '40001';
      END IF;
      IF k = 'dependency' THEN
        INSERT INTO dependency_releases VALUES (NEW.id, OLD.pending_dependencies, NEW.pending_dependencies);
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER inject_fault BEFORE UPDATE ON summary_jobs FOR EACH ROW EXECUTE FUNCTION inject_fault();
  `);
}

beforeAll(async () => {
  db = await createTestDatabase({ poolMax: 10 });
  await installCompletionAudit(db.pool);
  await installFaults(db.pool);
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE summary_jobs, job_dependencies, completion_audit, fault_plan, dependency_releases');
  for (const k of KINDS) await db.pool.query(`ALTER SEQUENCE fault_seen_${k} RESTART`);
});

function config(overrides: Record<string, string> = {}): ProcessorConfig {
  return processorConfig({
    BATCH_SIZE: '6',
    CONCURRENCY: '3',
    LEASE_SECONDS: '30',
    HEARTBEAT_SECONDS: '5',
    JOB_TIMEOUT_MS: '2000',
    SAFETY_MARGIN_MS: '2500',
    WORKER_ID: 'faulty',
    ...overrides,
  });
}

function deps(work: JobWork, cfg = config()): ProcessorDeps & { metrics: RecordingMetrics } {
  return { pool: db.pool, config: cfg, logger, metrics: new RecordingMetrics(), work, backoff: { baseSeconds: 0, maxSeconds: 0 } };
}

const seen = async (k: Kind) => Number((await db.pool.query(`SELECT last_value, is_called FROM fault_seen_${k}`)).rows[0].last_value);

it('records every outcome exactly once when the N-th completion, failure, snooze and dependency release each fail once', async () => {
  // 12 plain jobs, 4 that fail once and then succeed, 4 that snooze once, and 3 chains parent -> child.
  const plain = await enqueueJobs(db.pool, Array.from({ length: 12 }, (_, i) => ({ clientId: CLIENT, payload: { kind: 'plain', i } })));
  const flaky = await enqueueJobs(db.pool, Array.from({ length: 4 }, () => ({ clientId: CLIENT, payload: { kind: 'flaky' }, maxAttempts: 3 })));
  const sleepy = await enqueueJobs(db.pool, Array.from({ length: 4 }, () => ({ clientId: CLIENT, payload: { kind: 'sleepy' }, maxAttempts: 1 })));
  const parents = await enqueueJobs(db.pool, Array.from({ length: 3 }, () => ({ clientId: CLIENT, payload: { kind: 'parent' } })));
  const children = await enqueueJobs(db.pool, parents.map((p) => ({ clientId: CLIENT, payload: { kind: 'child' }, dependsOn: [p.job.id] })));
  const all = [...plain, ...flaky, ...sleepy, ...parents, ...children].map((r) => r.job.id);

  await db.pool.query(`INSERT INTO fault_plan (kind, nth) VALUES ('complete', 3), ('fail', 2), ('snooze', 2), ('dependency', 2)`);

  const runs = new Map<string, number>();
  const work: JobWork = async (job) => {
    const n = (runs.get(job.id) ?? 0) + 1;
    runs.set(job.id, n);
    if (job.payload.kind === 'flaky' && n === 1) throw retryable('flaky the first time');
    if (job.payload.kind === 'sleepy' && n === 1) throw snooze('upstream busy', 0);
    return { n };
  };
  const d = deps(work);
  // Faults that follow each other may end a run early (the database looks gone): the next invocation goes on.
  let completed = 0;
  for (let i = 0; i < 5 && completed < all.length; i++) completed += (await runProcessor(d, fakeInvocation(60_000))).completed;

  // Every planned fault fired (its write was seen at least N times), and was counted.
  for (const k of ['complete', 'fail', 'snooze', 'dependency'] as const) expect(await seen(k)).toBeGreaterThanOrEqual(2);
  expect(d.metrics.sum('DatabaseErrors')).toBeGreaterThanOrEqual(4);

  // None lost: everything completed, once each.
  const { rows } = await db.pool.query(`SELECT status, count(*)::int AS n FROM summary_jobs GROUP BY status`);
  expect(rows).toEqual([{ status: 'completed', n: all.length }]);
  const audit = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT job_id)::int AS d FROM completion_audit`);
  expect(audit.rows[0]).toEqual({ n: all.length, d: all.length });
  expect(completed).toBe(all.length);

  // None ran twice but by design: a flaky job's retry and a snoozed job's second run.
  const expectedRuns = (id: string) => (flaky.some((f) => f.job.id === id) || sleepy.some((s) => s.job.id === id) ? 2 : 1);
  expect(Object.fromEntries(all.map((id) => [id, runs.get(id)]))).toEqual(Object.fromEntries(all.map((id) => [id, expectedRuns(id)])));

  // A snooze spent no attempt (maxAttempts 1, yet completed), a failure spent one.
  for (const s of sleepy) expect(await getJob(db.pool, s.job.id, null)).toMatchObject({ status: 'completed', attempts: 1, snoozes: 1 });
  for (const f of flaky) {
    const job = (await getJob(db.pool, f.job.id, null))!;
    expect(job).toMatchObject({ status: 'completed', attempts: 2 });
    expect(job.attemptErrors).toEqual([expect.objectContaining({ attempt: 1, error: 'flaky the first time', retryable: true, worker: expect.stringMatching(/^faulty:/) })]);
  }

  // Dependents released exactly once each, and only after their parent completed.
  const releases = await db.pool.query(`SELECT job_id, pending_before, pending_after FROM dependency_releases ORDER BY job_id`);
  expect(releases.rows.map((r) => r.job_id).sort()).toEqual(children.map((c) => c.job.id).sort());
  expect(releases.rows.every((r) => r.pending_before === 1 && r.pending_after === 0)).toBe(true);
});

it('releases the unstarted jobs of a stopped run once, when the first release fails', async () => {
  await enqueueJobs(db.pool, Array.from({ length: 10 }, () => ({ clientId: CLIENT, maxAttempts: 1 })));
  await db.pool.query(`INSERT INTO fault_plan (kind, nth) VALUES ('release', 1)`);
  const shutdown = new AbortController();
  const run = await runProcessor(
    deps(async () => {
      shutdown.abort();
      return {};
    }, config({ BATCH_SIZE: '10', CONCURRENCY: '2' })),
    fakeInvocation(60_000),
    shutdown.signal,
  );
  expect(await seen('release')).toBeGreaterThanOrEqual(2);
  expect(run).toMatchObject({ stoppedBy: 'shutdown', completed: 2, released: 8 });
  const { rows } = await db.pool.query(`SELECT status, attempts, count(*)::int AS n FROM summary_jobs GROUP BY 1, 2 ORDER BY 1`);
  expect(rows).toEqual([
    { status: 'completed', attempts: 1, n: 2 },
    { status: 'queued', attempts: 0, n: 8 },
  ]);
});

it('gives a result up to the reaper when recording fails past the lease, logs it, and the job runs again', async () => {
  const { job } = (await enqueueJobs(db.pool, [{ clientId: CLIENT }]))[0]!;
  await db.pool.query(`INSERT INTO fault_plan (kind, nth, persistent) VALUES ('complete', 1, true)`);
  const errors = jest.spyOn(logger, 'error');
  try {
    const first = await runProcessor(
      deps(async () => ({ summary: 'the first result' }), config({ LEASE_SECONDS: '2', HEARTBEAT_SECONDS: '1' })),
      fakeInvocation(60_000),
    );
    expect(first.completed).toBe(0);
    expect(first.lost).toBe(1);
    const lostLine = errors.mock.calls.find(([message]) => String(message).startsWith('outcome lost'));
    expect(lostLine).toBeDefined();
    expect(lostLine![1]).toMatchObject({ jobId: job.id, outcome: 'complete', resultKeys: ['summary'], resultSha256: expect.any(String) });
  } finally {
    errors.mockRestore();
  }
  // Still running under the lost lease; the fault clears, the lease is past (backdated, not waited for).
  expect(await getJob(db.pool, job.id, null)).toMatchObject({ status: 'running', attempts: 1 });
  await db.pool.query(`DELETE FROM fault_plan`);
  await db.pool.query(`UPDATE summary_jobs SET lease_expires_at = now() - interval '1 minute' WHERE id = $1`, [job.id]);

  const second = await runProcessor(deps(async () => ({ summary: 'the second result' })), fakeInvocation(60_000));
  expect(second).toMatchObject({ reaped: 1, completed: 1 });
  expect(await getJob(db.pool, job.id, null)).toMatchObject({ status: 'completed', attempts: 2, result: { summary: 'the second result' } });
  const audit = await db.pool.query(`SELECT count(*)::int AS n FROM completion_audit`);
  expect(audit.rows[0].n).toBe(1);
});
