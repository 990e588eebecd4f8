import { createClient } from '../lambda/core/clients';
import { createPool } from '../lambda/core/db';
import { uuidv7 } from '../lambda/core/ids';
import { claimFairJobs, listRateLimits, setRateLimit, deleteRateLimit } from '../lambda/core/limits';
import { completeJobs, enqueueJobs, queueSignals, queueStats, type ClaimedJob } from '../lambda/core/queue';
import { createTestDatabase, type TestDatabase } from './support/db';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ poolMax: 20 });
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE summary_jobs, rate_limits');
});

const claim = (limit: number, workerId = 'w') => claimFairJobs(db.pool, { workerId, limit, leaseSeconds: 60 });
const complete = (jobs: ClaimedJob[]) => completeJobs(db.pool, jobs.map((j) => ({ id: j.id, token: j.leaseToken, result: {} })));
const enqueue = (clientId: string, n: number, extra: Record<string, unknown> = {}) =>
  enqueueJobs(db.pool, Array.from({ length: n }, () => ({ clientId, ...extra })));
const countBy = (jobs: ClaimedJob[], key: (j: ClaimedJob) => string) =>
  jobs.reduce<Record<string, number>>((acc, j) => ({ ...acc, [key(j)]: (acc[key(j)] ?? 0) + 1 }), {});

describe('fair claiming', () => {
  it('does not let a client with a big backlog starve one with a few jobs', async () => {
    const big = uuidv7();
    const small = uuidv7();
    await enqueue(big, 3000);
    await enqueue(small, 10);
    const first = await claim(20);
    expect(countBy(first, (j) => j.clientId)).toEqual({ [big]: 10, [small]: 10 });
  });

  it('shares the claim by client weight and keeps priority order within a client', async () => {
    const gold = (await createClient(db.pool, 'gold', { weight: 3 })).client.id;
    const basic = (await createClient(db.pool, 'basic', { weight: 1 })).client.id;
    await enqueue(gold, 100);
    await enqueue(basic, 100, { priority: 0 });
    const [urgent] = await enqueue(basic, 1, { priority: 50 });
    const jobs = await claim(40);
    expect(countBy(jobs, (j) => j.clientId)).toEqual({ [gold]: 30, [basic]: 10 });
    const basicJobs = jobs.filter((j) => j.clientId === basic);
    expect(basicJobs.map((j) => j.id)).toContain(urgent!.job.id);
  });

  it('fills the batch from the clients that have jobs: each takes its share, those with more take what short ones leave', async () => {
    const busy = uuidv7();
    const idle = uuidv7();
    await enqueue(busy, 300);
    await enqueue(idle, 1);
    // Two clients: half the batch each; the idle one has 1 job, the busy one takes the other 49 in a second round.
    expect(countBy(await claim(100), (j) => j.clientId)).toEqual({ [busy]: 99, [idle]: 1 });
    // Ten clients with one job each besides the busy one: it takes 100/11, rounded up, in the first round,
    // and what the others leave in the second.
    const few = Array.from({ length: 10 }, () => uuidv7());
    for (const c of few) await enqueue(c, 1);
    const topped = await claim(100);
    expect(countBy(topped, (j) => j.clientId)).toEqual({ [busy]: 90, ...Object.fromEntries(few.map((c) => [c, 1])) });
    // In claim order: the first round interleaved (each small client within its first 11 jobs), the second after.
    expect(topped.slice(0, 11).filter((j) => few.includes(j.clientId))).toHaveLength(10);
    expect(topped.slice(20).every((j) => j.clientId === busy)).toBe(true);
    expect(countBy(await claim(100), (j) => j.clientId)).toEqual({ [busy]: 100 });
  });
});

describe('fair claiming: who gets a share', () => {
  it('splits what a short client leaves among the clients with more, not to the oldest backlog alone', async () => {
    const first = uuidv7();
    const second = uuidv7();
    const short = uuidv7();
    await enqueue(first, 200);
    await enqueue(second, 200);
    await enqueue(short, 1);
    // Shares of 34: 34 + 34 + 1, then the 31 left split between the two full clients.
    const counts = countBy(await claim(100), (j) => j.clientId);
    expect(counts[short]).toBe(1);
    expect([counts[first], counts[second]].sort()).toEqual([49, 50]);
  });

  it('gives no share to clients whose jobs are all delayed: 99 of them and 1 runnable client, a claim of 10 gets 10', async () => {
    const later = new Date(Date.now() + 3_600_000);
    const delayed = Array.from({ length: 99 }, () => uuidv7());
    await enqueueJobs(db.pool, delayed.flatMap((clientId) => [{ clientId, runAt: later }, { clientId, runAt: later }]));
    const ready = uuidv7();
    await enqueue(ready, 30);
    const jobs = await claim(10);
    expect(countBy(jobs, (j) => j.clientId)).toEqual({ [ready]: 10 });
  });

  it('returns the claim in its fair order, interleaving a small client with a big backlog', async () => {
    const big = uuidv7();
    const small = uuidv7();
    await enqueue(big, 200);
    await enqueue(small, 5);
    const jobs = await claim(10);
    expect(jobs.map((j) => (j.clientId === small ? 's' : 'B')).join('')).toBe('BsBsBsBsBs');
  });
});

describe('fair claiming: more active clients than the batch', () => {
  it('takes one job from each of as many clients as the claim asks for', async () => {
    const clients = Array.from({ length: 150 }, () => uuidv7());
    await enqueueJobs(db.pool, clients.flatMap((clientId) => [{ clientId }, { clientId }]));
    for (let i = 0; i < 3; i++) {
      const jobs = await claim(20);
      expect(jobs).toHaveLength(20);
      expect(new Set(jobs.map((j) => j.clientId)).size).toBe(20);
    }
  });
});

describe('rate limits', () => {
  it('gives an empty queue no backlog, no held jobs and no age', async () => {
    expect(await queueSignals(db.pool)).toEqual({ queued: 0, heldByRateLimit: 0, oldestRunnableAgeSeconds: 0 });
    await enqueueJobs(db.pool, [{ clientId: uuidv7(), runAt: new Date(Date.now() + 3_600_000) }]);
    expect(await queueSignals(db.pool)).toEqual({ queued: 0, heldByRateLimit: 0, oldestRunnableAgeSeconds: 0 });
  });

  it('counts runnable jobs a limit holds back apart, and leaves them out of the oldest age', async () => {
    const held = uuidv7();
    const free = uuidv7();
    await enqueue(held, 4);
    await enqueue(free, 2);
    await db.pool.query(`UPDATE summary_jobs SET run_at = now() - interval '1 hour' WHERE client_id = $1`, [held]);
    await setRateLimit(db.pool, { scope: 'client', key: held, maxPerInterval: null, intervalSeconds: 60, maxRunning: 0 });
    const signals = await queueSignals(db.pool);
    expect(signals).toMatchObject({ queued: 6, heldByRateLimit: 4 });
    expect(signals.oldestRunnableAgeSeconds).toBeLessThan(60);
    // The API's statistics keep their shape; the age is the same.
    const stats = await queueStats(db.pool);
    expect(stats).not.toHaveProperty('heldByRateLimit');
    expect(stats.oldestRunnableAgeSeconds).toBeLessThan(60);
    await deleteRateLimit(db.pool, 'client', held);
    expect((await queueSignals(db.pool)).oldestRunnableAgeSeconds).toBeGreaterThan(3500);
  });

  it('caps jobs running at once for a client across many concurrent claimers, without stalling other clients', async () => {
    const limited = uuidv7();
    const free = uuidv7();
    await enqueue(limited, 200);
    await enqueue(free, 200);
    await setRateLimit(db.pool, { scope: 'client', key: limited, maxPerInterval: null, intervalSeconds: 60, maxRunning: 3 });
    const pool = createPool({ connectionString: db.url, max: 10 });
    const claimed: ClaimedJob[] = [];
    try {
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          for (let i = 0; i < 10; i++) claimed.push(...(await claimFairJobs(pool, { workerId: `w${w}`, limit: 7, leaseSeconds: 60 })));
        }),
      );
    } finally {
      await pool.end();
    }
    const byClient = countBy(claimed, (j) => j.clientId);
    expect(byClient[limited]).toBe(3);
    expect(byClient[free]).toBe(200);
    const running = await db.pool.query(`SELECT count(*)::int AS n FROM summary_jobs WHERE client_id = $1 AND status = 'running'`, [limited]);
    expect(running.rows[0].n).toBe(3);
    // Finishing one frees one slot.
    await complete(claimed.filter((j) => j.clientId === limited).slice(0, 1));
    expect(countBy(await claim(10), (j) => j.clientId)).toEqual({ [limited]: 1 });
  });

  it('caps jobs started per interval for a job type under concurrency, and opens again in the next window', async () => {
    const a = uuidv7();
    const b = uuidv7();
    await enqueue(a, 100, { jobType: 'digest' });
    await enqueue(b, 100, { jobType: 'digest' });
    await enqueue(b, 50, { jobType: 'summarize' });
    await setRateLimit(db.pool, { scope: 'job_type', key: 'digest', maxPerInterval: 5, intervalSeconds: 2, maxRunning: null });
    const pool = createPool({ connectionString: db.url, max: 10 });
    const started: ClaimedJob[] = [];
    try {
      await Promise.all(
        Array.from({ length: 6 }, async (_, w) => {
          for (let i = 0; i < 8; i++) {
            const jobs = await claimFairJobs(pool, { workerId: `w${w}`, limit: 4, leaseSeconds: 60 });
            started.push(...jobs);
            await completeJobs(pool, jobs.map((j) => ({ id: j.id, token: j.leaseToken, result: {} })));
          }
        }),
      );
    } finally {
      await pool.end();
    }
    const byType = countBy(started, (j) => j.jobType);
    expect(byType.digest).toBe(5);
    expect(byType.summarize).toBe(50);
    // The window passes (backdated, not waited for).
    await db.pool.query(`UPDATE rate_limits SET window_start = window_start - interval '3 seconds'`);
    const next = await claim(20);
    expect(countBy(next, (j) => j.jobType)).toEqual({ digest: 5 });
  });

  it('fills a batch a short client leaves from limited clients and job types, up to what their limits still allow', async () => {
    const busy = uuidv7();
    const short = uuidv7();
    await enqueue(busy, 100);
    await enqueue(short, 1);
    // A limit with room changes nothing: 9 + 1.
    await setRateLimit(db.pool, { scope: 'client', key: busy, maxPerInterval: null, intervalSeconds: 60, maxRunning: 1000 });
    let jobs = await claim(10);
    expect(countBy(jobs, (j) => j.clientId)).toEqual({ [busy]: 9, [short]: 1 });
    await complete(jobs);
    // A job type limit with room on every job, likewise.
    await deleteRateLimit(db.pool, 'client', busy);
    await enqueue(short, 1);
    await setRateLimit(db.pool, { scope: 'job_type', key: 'summarize', maxPerInterval: null, intervalSeconds: 60, maxRunning: 1000 });
    jobs = await claim(10);
    expect(countBy(jobs, (j) => j.clientId)).toEqual({ [busy]: 9, [short]: 1 });
    await complete(jobs);
    // Tight limits are kept exactly: the busy client's share is 5, its limit 7, so it gets 7, not 9.
    await deleteRateLimit(db.pool, 'job_type', 'summarize');
    await enqueue(short, 1);
    await setRateLimit(db.pool, { scope: 'client', key: busy, maxPerInterval: null, intervalSeconds: 60, maxRunning: 7 });
    jobs = await claim(10);
    expect(countBy(jobs, (j) => j.clientId)).toEqual({ [busy]: 7, [short]: 1 });
    await complete(jobs);
    // And a job type's: at most 6 of the type in all.
    await deleteRateLimit(db.pool, 'client', busy);
    await enqueue(short, 1);
    await setRateLimit(db.pool, { scope: 'job_type', key: 'summarize', maxPerInterval: null, intervalSeconds: 60, maxRunning: 6 });
    jobs = await claim(10);
    expect(jobs).toHaveLength(6);
    expect(jobs.filter((j) => j.clientId === short)).toHaveLength(1);
  });

  it('is table-driven: limits can be listed, changed and removed at runtime', async () => {
    const c = uuidv7();
    await enqueue(c, 30);
    await setRateLimit(db.pool, { scope: 'client', key: c, maxPerInterval: 2, intervalSeconds: 3600, maxRunning: null });
    expect(await claim(10)).toHaveLength(2);
    expect(await claim(10)).toHaveLength(0);
    await setRateLimit(db.pool, { scope: 'client', key: c, maxPerInterval: 5, intervalSeconds: 3600, maxRunning: null });
    expect(await claim(10)).toHaveLength(3);
    expect(await listRateLimits(db.pool)).toEqual([{ scope: 'client', key: c, maxPerInterval: 5, intervalSeconds: 3600, maxRunning: null }]);
    expect(await deleteRateLimit(db.pool, 'client', c)).toBe(true);
    expect(await claim(10)).toHaveLength(10);
  });
});
