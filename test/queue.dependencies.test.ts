import { presentJob } from '../lambda/api/present';
import { processorConfig } from '../lambda/core/config';
import { JobError, ProblemError, permanent, retryable, snooze } from '../lambda/core/errors';
import { uuidv7 } from '../lambda/core/ids';
import { logger } from '../lambda/core/logger';
import { RecordingMetrics } from '../lambda/core/metrics';
import { runProcessor, type JobWork } from '../lambda/core/processor';
import { cancelJob, claimJobs, enqueueJobs, getJob, reapExpiredLeases, retryJob, type Job } from '../lambda/core/queue';
import { createTestDatabase, type TestDatabase } from './support/db';
import { fakeInvocation } from './support/processor';

/**
 * Dependencies move with their parent's state change, in the same call;
 * retrying a job that failed because of its parent re-checks the parent; the
 * repair sweep mends counts older versions left behind. Also the attempt
 * history and the snooze bound, as the processor records them.
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

const config = (overrides: Record<string, string> = {}) =>
  processorConfig({ BATCH_SIZE: '10', CONCURRENCY: '2', JOB_TIMEOUT_MS: '2000', SAFETY_MARGIN_MS: '2500', WORKER_ID: 'deps', ...overrides });
const process = (work: JobWork, overrides: Record<string, string> = {}) =>
  runProcessor(
    { pool: db.pool, config: config(overrides), logger, metrics: new RecordingMetrics(), work, backoff: { baseSeconds: 0, maxSeconds: 0 } },
    fakeInvocation(60_000),
  );
const submit = async (dependsOn: string[] = [], extra: Record<string, unknown> = {}): Promise<Job> =>
  (await enqueueJobs(db.pool, [{ clientId: CLIENT, dependsOn, ...extra }]))[0]!.job;
const job = async (id: string) => (await getJob(db.pool, id, null))!;

describe('dependencies', () => {
  it('runs a job that failed because of its parent once the parent was retried and completed; refuses before with a 409 naming the parent', async () => {
    const parent = await submit([], { maxAttempts: 1, payload: { breaks: true } });
    const child = await submit([parent.id]);
    const ran: string[] = [];
    let broken = true;
    const work: JobWork = async (j) => {
      ran.push(j.id);
      if (j.payload.breaks && broken) throw permanent('the document is empty');
      return { ok: true };
    };
    await process(work);
    expect(await job(parent.id)).toMatchObject({ status: 'failed' });
    expect(await job(child.id)).toMatchObject({ status: 'failed', lastError: `dependency ${parent.id} failed; not run` });

    const refused = await retryJob(db.pool, child.id, CLIENT).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ProblemError);
    expect(refused).toMatchObject({ status: 409, type: 'dependency-not-completed', extensions: { dependency: { id: parent.id, status: 'failed' } } });
    expect((refused as ProblemError).detail).toContain(parent.id);
    expect(await job(child.id)).toMatchObject({ status: 'failed' });

    broken = false;
    expect(await retryJob(db.pool, parent.id, CLIENT)).toMatchObject({ ok: true });
    // The parent is queued again, not completed: still refused.
    await expect(retryJob(db.pool, child.id, CLIENT)).rejects.toMatchObject({ status: 409, extensions: { dependency: { id: parent.id, status: 'queued' } } });
    await process(work);
    expect(await job(parent.id)).toMatchObject({ status: 'completed' });

    expect(await retryJob(db.pool, child.id, CLIENT)).toMatchObject({ ok: true, job: { status: 'queued', attempts: 0, pendingDependencies: 0 } });
    await process(work);
    expect(await job(child.id)).toMatchObject({ status: 'completed', result: { ok: true } });
    expect(ran).toEqual([parent.id, parent.id, child.id]);
  });

  it('fails dependents (and theirs) in the same call that cancels or reaps their parent', async () => {
    const cancelled = await submit([], { runAt: new Date(Date.now() + 60_000) });
    const child = await submit([cancelled.id]);
    const grandchild = await submit([child.id]);
    expect(await cancelJob(db.pool, cancelled.id, CLIENT)).toMatchObject({ ok: true });
    expect(await job(child.id)).toMatchObject({ status: 'failed', lastError: `dependency ${cancelled.id} cancelled; not run` });
    expect(await job(grandchild.id)).toMatchObject({ status: 'failed', lastError: `dependency ${child.id} failed; not run` });

    const reaped = await submit([], { maxAttempts: 1 });
    const orphan = await submit([reaped.id]);
    await claimJobs(db.pool, { workerId: 'dead', limit: 1, leaseSeconds: 60 });
    await db.pool.query(`UPDATE summary_jobs SET lease_expires_at = now() - interval '1 minute' WHERE id = $1`, [reaped.id]);
    expect((await reapExpiredLeases(db.pool)).map((r) => [r.id, r.status])).toEqual([[reaped.id, 'failed']]);
    expect(await job(orphan.id)).toMatchObject({ status: 'failed', lastError: `dependency ${reaped.id} failed; not run` });
    expect((await job(reaped.id)).attemptErrors).toEqual([
      expect.objectContaining({ attempt: 1, worker: 'dead', retryable: false, clientCaused: false, error: expect.stringMatching(/^lease expired/) }),
    ]);
  });

  it('repairs, in the maintenance phase, counts that an older version left behind', async () => {
    const parent = await submit();
    const stuck = await submit([parent.id]);
    const failedParent = await submit();
    const doomed = await submit([failedParent.id]);
    // As a crash between two statements could leave them: parents finished, children not moved, a while ago.
    await db.pool.query(`UPDATE summary_jobs SET status = 'completed', finished_at = now() WHERE id = $1`, [parent.id]);
    await db.pool.query(`UPDATE summary_jobs SET status = 'failed', finished_at = now(), last_error = 'x' WHERE id = $1`, [failedParent.id]);
    await db.pool.query(`UPDATE summary_jobs SET updated_at = now() - interval '5 minutes' WHERE id = ANY($1::uuid[])`, [[stuck.id, doomed.id]]);
    const ran: string[] = [];
    const run = await process(async (j) => {
      ran.push(j.id);
      return {};
    });
    expect(ran).toEqual([stuck.id]);
    expect(run.completed).toBe(1);
    expect(await job(stuck.id)).toMatchObject({ status: 'completed', pendingDependencies: 0 });
    expect(await job(doomed.id)).toMatchObject({ status: 'failed', lastError: `dependency ${failedParent.id} failed; not run` });
  });

  it('leaves alone a waiting job whose parent is running', async () => {
    const parent = await submit();
    const child = await submit([parent.id]);
    await claimJobs(db.pool, { workerId: 'busy', limit: 1, leaseSeconds: 60 });
    await db.pool.query(`UPDATE summary_jobs SET updated_at = now() - interval '5 minutes' WHERE id = $1`, [child.id]);
    const ran: string[] = [];
    await process(async (j) => {
      ran.push(j.id);
      return {};
    });
    expect(ran).toEqual([]);
    expect(await job(child.id)).toMatchObject({ status: 'queued', pendingDependencies: 1 });
  });
});

describe('attempt history and snoozes', () => {
  it('keeps every attempt\'s error, shows it on the job, and keeps it when the job is retried with its progress cleared', async () => {
    const j = await submit([], { maxAttempts: 3 });
    await process(async (claimed) => {
      throw retryable(`model overloaded on attempt ${claimed.attempts}`);
    });
    const failed = await job(j.id);
    expect(failed).toMatchObject({ status: 'failed', attempts: 3 });
    expect(failed.attemptErrors!.map((e) => [e.attempt, e.error, e.retryable])).toEqual([
      [1, 'model overloaded on attempt 1', true],
      [2, 'model overloaded on attempt 2', true],
      // The last one spent the attempts: no other attempt followed.
      [3, 'model overloaded on attempt 3', false],
    ]);
    expect(failed.attemptErrors!.every((e) => /^deps:/.test(e.worker ?? '') && !Number.isNaN(Date.parse(e.at)))).toBe(true);
    expect(presentJob(failed)).toMatchObject({ error: 'model overloaded on attempt 3', attemptErrors: failed.attemptErrors });

    await db.pool.query(`UPDATE summary_jobs SET progress_percent = 40, progress_message = 'half way' WHERE id = $1`, [j.id]);
    const retried = await retryJob(db.pool, j.id, CLIENT);
    expect(retried).toMatchObject({ ok: true, job: { status: 'queued', attempts: 0, progressPercent: null, progressMessage: null } });
    expect((await job(j.id)).attemptErrors).toHaveLength(3);
  });

  it('snoozes without spending attempts up to MAX_SNOOZES, then counts a snooze as a failed attempt', async () => {
    const j = await submit([], { maxAttempts: 1 });
    let runs = 0;
    const run = await process(
      async () => {
        runs += 1;
        throw snooze('bedrock ThrottlingException: Rate exceeded', 0);
      },
      { MAX_SNOOZES: '3' },
    );
    expect(runs).toBe(4);
    expect(run).toMatchObject({ snoozed: 3, failed: 1 });
    const done = await job(j.id);
    expect(done).toMatchObject({ status: 'failed', attempts: 1, snoozes: 3, lastError: 'snoozed 3 times, the limit: bedrock ThrottlingException: Rate exceeded' });
    expect(done.attemptErrors).toHaveLength(1);
  });

  it('counts client-caused failures apart from system failures, and a failed job shows no stale progress', async () => {
    const client = await submit([], { payload: { kind: 'client' } });
    const system = await submit([], { payload: { kind: 'system' } });
    const metrics = new RecordingMetrics();
    await runProcessor(
      {
        pool: db.pool,
        config: config(),
        logger,
        metrics,
        work: async (claimed, ctx) => {
          await ctx.progress(50, 'half way');
          if (claimed.payload.kind === 'client') throw permanent('the document is empty');
          throw new JobError('unknown job type "x"', false, 'system');
        },
      },
      fakeInvocation(60_000),
    );
    expect(metrics.points.filter((p) => p.name === 'JobsFailedClientError').map((p) => p.context?.jobId)).toEqual([client.id]);
    expect(metrics.points.filter((p) => p.name === 'JobsFailed').map((p) => p.context?.jobId)).toEqual([system.id]);
    // Progress is advisory and superseded by the outcome: a failed job shows none.
    expect(await job(client.id)).toMatchObject({ status: 'failed', progressPercent: null });
    // The attempt history says which failures were the client's, for counting them per client.
    expect((await job(client.id)).attemptErrors).toEqual([expect.objectContaining({ error: 'the document is empty', retryable: false, clientCaused: true })]);
    expect((await job(system.id)).attemptErrors).toEqual([expect.objectContaining({ error: 'unknown job type "x"', clientCaused: false })]);
    expect(presentJob(await job(client.id)).attemptErrors).toEqual([expect.objectContaining({ clientCaused: true })]);
  });
});

