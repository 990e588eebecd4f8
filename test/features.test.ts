import { createClient } from '../lambda/core/clients';
import { createPool } from '../lambda/core/db';
import { uuidv7 } from '../lambda/core/ids';
import {
  QueueInputError,
  cancelJob,
  claimJobs,
  completeJobs,
  enqueueJobs,
  failJobs,
  getJob,
  pruneFinishedJobs,
  reportProgress,
  type ClaimedJob,
} from '../lambda/core/queue';
import { enqueueDueSchedules, listSchedules, nextTick, upsertSchedule, ScheduleError } from '../lambda/core/recurring';
import { withTransaction } from '../lambda/core/db';
import { apiEvent, testApi } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/db';

let db: TestDatabase;
let clientId: string;
beforeAll(async () => {
  db = await createTestDatabase({ poolMax: 12 });
  clientId = (await createClient(db.pool, 'features')).client.id;
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE summary_jobs, job_dependencies, recurring_jobs, uploads');
});

const claimAll = () => claimJobs(db.pool, { workerId: 'w', limit: 1000, leaseSeconds: 60 });
const complete = (jobs: ClaimedJob[]) => completeJobs(db.pool, jobs.map((j) => ({ id: j.id, token: j.leaseToken, result: {} })));
const submit = (dependsOn: string[] = [], extra = {}) =>
  withTransaction(db.pool, async (tx) => (await enqueueJobs(tx, [{ clientId, dependsOn, ...extra }]))[0]!.job);

describe('job dependencies', () => {
  it('holds a job until every parent completed', async () => {
    const a = await submit();
    const b = await submit();
    const child = await submit([a.id, b.id]);
    expect(child.pendingDependencies).toBe(2);
    let claimed = await claimAll();
    expect(claimed.map((j) => j.id).sort()).toEqual([a.id, b.id].sort());
    await complete(claimed.filter((j) => j.id === a.id));
    expect(await claimAll()).toEqual([]);
    await complete(claimed.filter((j) => j.id === b.id));
    claimed = await claimAll();
    expect(claimed.map((j) => j.id)).toEqual([child.id]);
  });

  it('fails dependents (and theirs) when a parent fails for good, naming the parent', async () => {
    const parent = await submit([], { maxAttempts: 1 });
    const child = await submit([parent.id]);
    const grandchild = await submit([child.id]);
    const [p] = await claimAll();
    await failJobs(db.pool, [{ id: p!.id, token: p!.leaseToken, error: 'bad input', retryable: false }]);
    expect(await getJob(db.pool, child.id, clientId)).toMatchObject({ status: 'failed', lastError: `dependency ${parent.id} failed; not run` });
    expect(await getJob(db.pool, grandchild.id, clientId)).toMatchObject({ status: 'failed', lastError: `dependency ${child.id} failed; not run` });
  });

  it('fails dependents of a cancelled parent', async () => {
    const parent = await submit([], { runAt: new Date(Date.now() + 60_000) });
    const child = await submit([parent.id]);
    await cancelJob(db.pool, parent.id, clientId);
    expect(await getJob(db.pool, child.id, clientId)).toMatchObject({ status: 'failed', lastError: `dependency ${parent.id} cancelled; not run` });
  });

  it('settles against parents that finished before the child was submitted', async () => {
    const done = await submit();
    await complete(await claimAll());
    const child = await submit([done.id]);
    expect(child.pendingDependencies).toBe(1);
    expect((await claimAll()).map((j) => j.id)).toEqual([child.id]);
  });

  it('rejects unknown ids and other clients\' jobs; cycles cannot be formed', async () => {
    const other = (await enqueueJobs(db.pool, [{ clientId: uuidv7() }]))[0]!.job;
    await expect(submit([uuidv7()])).rejects.toBeInstanceOf(QueueInputError);
    await expect(submit([other.id])).rejects.toThrow(/unknown job id/);
    // A job can only name jobs that exist before it, so no job can name a later one.
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM summary_jobs WHERE client_id = $1`, [clientId]);
    expect(rows[0].n).toBe(0);
  });

  it('handles fan-in of hundreds of parents and fan-out to hundreds of children', async () => {
    const parents = await withTransaction(db.pool, (tx) => enqueueJobs(tx, Array.from({ length: 300 }, () => ({ clientId }))));
    const fanIn = await submit(parents.map((p) => p.job.id));
    const fanOut = await withTransaction(db.pool, (tx) =>
      enqueueJobs(tx, Array.from({ length: 300 }, () => ({ clientId, dependsOn: [parents[0]!.job.id] }))),
    );
    const pool = createPool({ connectionString: db.url, max: 6 });
    try {
      // Parents complete concurrently from several workers.
      await Promise.all(
        Array.from({ length: 6 }, async () => {
          for (;;) {
            const jobs = (await claimJobs(pool, { workerId: 'w', limit: 25, leaseSeconds: 60 })).filter((j) => j.id !== fanIn.id);
            if (jobs.length === 0) return;
            await completeJobs(pool, jobs.map((j) => ({ id: j.id, token: j.leaseToken, result: {} })));
          }
        }),
      );
    } finally {
      await pool.end();
    }
    expect(await getJob(db.pool, fanIn.id, clientId)).toMatchObject({ pendingDependencies: 0 });
    const children = await db.pool.query(`SELECT status, count(*)::int AS n FROM summary_jobs WHERE id = ANY($1::uuid[]) GROUP BY status`, [
      fanOut.map((c) => c.job.id),
    ]);
    expect(children.rows).toEqual([{ status: 'completed', n: 300 }]);
  });
});

describe('recurring jobs', () => {
  const t0 = new Date('2026-03-01T10:00:30Z');

  it('enqueues exactly one job per tick, even with several processors at once', async () => {
    await upsertSchedule(db.pool, { clientId, name: 'digest', cron: '*/5 * * * *' }, t0);
    const due = new Date('2026-03-01T10:05:10Z');
    const pool = createPool({ connectionString: db.url, max: 8 });
    try {
      const counts = await Promise.all(Array.from({ length: 8 }, () => enqueueDueSchedules(pool, due)));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(1);
      expect(await enqueueDueSchedules(pool, due)).toBe(0);
    } finally {
      await pool.end();
    }
    const { rows } = await db.pool.query(`SELECT job_type, payload, idempotency_key FROM summary_jobs`);
    expect(rows).toEqual([
      { job_type: 'digest', payload: { schedule: 'digest', tick: '2026-03-01T10:05:00.000Z' }, idempotency_key: expect.stringMatching(/^recurring:/) },
    ]);
    const [s] = await listSchedules(db.pool, clientId);
    expect(s!.nextRunAt.toISOString()).toBe('2026-03-01T10:10:00.000Z');
  });

  it('coalesces missed ticks into one job for the latest, and counts them', async () => {
    await upsertSchedule(db.pool, { clientId, name: 'digest', cron: '*/5 * * * *' }, t0);
    expect(await enqueueDueSchedules(db.pool, new Date('2026-03-01T11:02:00Z'))).toBe(1);
    const [s] = await listSchedules(db.pool, clientId);
    expect(s).toMatchObject({ missedTicks: 11 });
    expect(s!.lastTickAt!.toISOString()).toBe('2026-03-01T11:00:00.000Z');
    expect(s!.nextRunAt.toISOString()).toBe('2026-03-01T11:05:00.000Z');
  });

  it('follows the schedule\'s time zone and rejects bad expressions', () => {
    expect(nextTick('0 9 * * *', 'Europe/Berlin', new Date('2026-07-01T00:00:00Z')).toISOString()).toBe('2026-07-01T07:00:00.000Z');
    expect(() => nextTick('61 * * * *', 'UTC', t0)).toThrow(ScheduleError);
    expect(() => nextTick('* * * * *', 'Mars/Olympus', t0)).toThrow(ScheduleError);
  });
});

describe('retention', () => {
  it('prunes old finished jobs and their uploads in bounded batches, and nothing else', async () => {
    const uploads = Array.from({ length: 50 }, () => uuidv7());
    await db.pool.query(
      `INSERT INTO uploads (id, client_id, content_type, size_bytes, sha256, content)
       SELECT u, $1, 'text/plain', 1, 'x', '\\x41' FROM unnest($2::uuid[]) AS u`,
      [clientId, uploads],
    );
    const old = await enqueueJobs(db.pool, uploads.map((uploadId) => ({ clientId, uploadId })));
    const recent = await enqueueJobs(db.pool, Array.from({ length: 10 }, () => ({ clientId })));
    await complete(await claimAll());
    const queued = await enqueueJobs(db.pool, Array.from({ length: 5 }, () => ({ clientId })));
    await db.pool.query(`UPDATE summary_jobs SET finished_at = now() - interval '40 days' WHERE id = ANY($1::uuid[])`, [old.map((o) => o.job.id)]);

    const thirtyDays = 30 * 86400;
    expect(await pruneFinishedJobs(db.pool, thirtyDays, 20)).toBe(20);
    expect(await pruneFinishedJobs(db.pool, thirtyDays, 20)).toBe(20);
    expect(await pruneFinishedJobs(db.pool, thirtyDays, 20)).toBe(10);
    expect(await pruneFinishedJobs(db.pool, thirtyDays, 20)).toBe(0);
    const left = await db.pool.query(`SELECT id FROM summary_jobs`);
    expect(left.rows.map((r) => r.id).sort()).toEqual([...recent, ...queued].map((r) => r.job.id).sort());
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM uploads`)).rows[0].n).toBe(0);
  });
});

describe('progress', () => {
  it('shows a running job\'s progress on GET /jobs/{id}', async () => {
    const { apiKey } = await createClient(db.pool, `p-${Date.now()}`);
    const api = testApi(db.pool);
    const up = await api.call(apiEvent('POST', '/uploads', { headers: { 'x-api-key': apiKey }, body: { content: 'One. Two.' } }));
    const [job] = await claimAll();
    expect(job!.id).toBe(up.json.id);
    await reportProgress(db.pool, [{ id: job!.id, token: job!.leaseToken, percent: 60, message: 'ranking sentences' }]);
    const res = await api.call(apiEvent('GET', `/jobs/${job!.id}`, { headers: { 'x-api-key': apiKey } }));
    expect(res.json).toMatchObject({ status: 'running', progress: { percent: 60, message: 'ranking sentences' } });
  });
});
