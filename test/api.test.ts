import { createClient, revokeClient } from '../lambda/core/clients';
import { claimJobs, completeJobs, failJobs } from '../lambda/core/queue';
import { ADMIN_KEY, apiEvent, testApi } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/db';

let db: TestDatabase;
let api: ReturnType<typeof testApi>;
let keyA: string;
let keyB: string;
const ARTICLE = 'Postgres is a database. It can also be a queue. Many teams run their jobs on it.';

beforeAll(async () => {
  db = await createTestDatabase();
  api = testApi(db.pool);
  keyA = (await createClient(db.pool, 'acme')).apiKey;
  keyB = (await createClient(db.pool, 'bravo')).apiKey;
});
afterAll(async () => {
  await db.drop();
});

const as = (key: string, extra: Record<string, string> = {}) => ({ 'x-api-key': key, ...extra });
const count = async (table: string) => (await db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;

async function upload(key = keyA, body: object = { content: ARTICLE }, headers: Record<string, string> = {}) {
  return api.call(apiEvent('POST', '/uploads', { headers: as(key, headers), body }));
}

describe('POST /uploads', () => {
  it('stores a JSON upload and its job, answers 202 with a Location, and nudges the processor', async () => {
    const before = api.nudges.length;
    const res = await upload(keyA, { content: ARTICLE, filename: 'a.txt', options: { priority: 5, maxSentences: 2 } });
    expect(res.statusCode).toBe(202);
    expect(res.headers!.location).toBe(`/jobs/${res.json.id}`);
    expect(res.json).toMatchObject({ status: 'queued', attempts: 0, priority: 5, filename: 'a.txt', contentType: 'text/plain', result: null });
    const { rows } = await db.pool.query(
      `SELECT u.content, u.content_type, j.payload FROM summary_jobs j JOIN uploads u ON u.id = j.upload_id WHERE j.id = $1`,
      [res.json.id],
    );
    expect(rows[0].content.toString()).toBe(ARTICLE);
    expect(rows[0].payload).toMatchObject({ maxSentences: 2 });
    expect(api.nudges.length).toBe(before + 1);
  });

  it('takes raw text/markdown, text/html and base64 PDF bodies with options in the query string', async () => {
    const md = await api.call(
      apiEvent('POST', '/uploads', { headers: as(keyA, { 'content-type': 'text/markdown; charset=utf-8' }), body: '# Title\n\nSome text.', query: { filename: 'r.md', priority: '-3' } }),
    );
    expect(md.statusCode).toBe(202);
    expect(md.json).toMatchObject({ contentType: 'text/markdown', filename: 'r.md', priority: -3 });
    const pdf = await api.call(apiEvent('POST', '/uploads', { headers: as(keyA, { 'Content-Type': 'application/pdf' }), body: Buffer.from('%PDF-1.4 bytes') }));
    expect(pdf.statusCode).toBe(202);
    const stored = await db.pool.query(`SELECT content FROM uploads WHERE id = (SELECT upload_id FROM summary_jobs WHERE id = $1)`, [pdf.json.id]);
    expect(stored.rows[0].content.toString()).toBe('%PDF-1.4 bytes');
  });

  it('schedules a job for later with options.runAt', async () => {
    const runAt = new Date(Date.now() + 3600_000).toISOString();
    const res = await upload(keyA, { content: ARTICLE, options: { runAt } });
    expect(res.json.runAt).toBe(runAt);
  });

  it('replays the first job for the same Idempotency-Key and body, and refuses another body with 422', async () => {
    const first = await upload(keyA, { content: ARTICLE }, { 'Idempotency-Key': 'order-1' });
    const uploads = await count('uploads');
    const again = await upload(keyA, { content: ARTICLE }, { 'Idempotency-Key': 'order-1' });
    expect(again.statusCode).toBe(202);
    expect(again.json.id).toBe(first.json.id);
    expect(again.headers!['idempotent-replayed']).toBe('true');
    const other = await upload(keyA, { content: ARTICLE + ' More.' }, { 'Idempotency-Key': 'order-1' });
    expect(other.statusCode).toBe(422);
    expect(other.headers!['content-type']).toBe('application/problem+json');
    expect(other.json).toMatchObject({ status: 422, title: 'Idempotency key reused' });
    expect(await count('uploads')).toBe(uploads);
    // The key belongs to its client: another client may use it independently.
    const b = await upload(keyB, { content: ARTICLE }, { 'Idempotency-Key': 'order-1' });
    expect(b.json.id).not.toBe(first.json.id);
  });

  it('keeps one job for concurrent requests with the same key', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => upload(keyA, { content: 'Same doc. Twice.' }, { 'Idempotency-Key': 'race-1' })));
    expect(new Set(results.map((r) => r.json.id)).size).toBe(1);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM summary_jobs WHERE idempotency_key = 'race-1'`);
    expect(rows[0].n).toBe(1);
    const orphans = await db.pool.query(`SELECT count(*)::int AS n FROM uploads u WHERE NOT EXISTS (SELECT 1 FROM summary_jobs j WHERE j.upload_id = u.id)`);
    expect(orphans.rows[0].n).toBe(0);
  });

  it.each([
    ['a body over the limit', { 'content-type': 'text/plain' }, 'x'.repeat(70 * 1024), 413],
    ['an unsupported content type', { 'content-type': 'image/png' }, 'abc', 415],
    ['no content type', {}, 'abc', 415],
    ['malformed JSON', { 'content-type': 'application/json' }, '{"content": ', 400],
    ['an unknown field', { 'content-type': 'application/json' }, '{"content":"a","colour":"red"}', 400],
    ['a wrong type', { 'content-type': 'application/json' }, '{"content":42}', 400],
    ['a huge priority', { 'content-type': 'application/json' }, '{"content":"a","options":{"priority":1e9}}', 400],
    ['a bad runAt', { 'content-type': 'application/json' }, '{"content":"a","options":{"runAt":"tomorrow"}}', 400],
    ['an empty document', { 'content-type': 'text/plain' }, '   ', 400],
    ['a bad dependency id', { 'content-type': 'application/json' }, '{"content":"a","options":{"dependsOn":["nope"]}}', 400],
  ])('rejects %s with a problem and stores nothing', async (_, headers, body, status) => {
    const jobs = await count('summary_jobs');
    const res = await api.call(apiEvent('POST', '/uploads', { headers: as(keyA, headers), body }));
    expect(res.statusCode).toBe(status);
    expect(res.headers!['content-type']).toBe('application/problem+json');
    expect(res.json).toMatchObject({ status, type: expect.stringContaining('/problems/'), title: expect.any(String), detail: expect.any(String) });
    expect(await count('summary_jobs')).toBe(jobs);
  });

  it('rejects a dependency on another client\'s job as unknown (422) and stores nothing', async () => {
    const bJob = await upload(keyB);
    const jobs = await count('summary_jobs');
    const res = await upload(keyA, { content: ARTICLE, options: { dependsOn: [bJob.json.id] } });
    expect(res.statusCode).toBe(422);
    expect(res.json.detail).toMatch(/unknown job id/);
    expect(await count('summary_jobs')).toBe(jobs);
    expect(await count('uploads')).toBeGreaterThan(0);
  });
});

describe('GET /jobs and /jobs/{id}', () => {
  it('shows a completed job with its summary and a failed one with its error', async () => {
    const ok = await upload(keyB, { content: 'Completed doc.' });
    const bad = await upload(keyB, { content: 'Failing doc.', options: { maxAttempts: 1 } });
    const claimed = await claimJobs(db.pool, { workerId: 't', limit: 100, leaseSeconds: 30 });
    const mine = claimed.filter((j) => j.id === ok.json.id || j.id === bad.json.id);
    const others = claimed.filter((j) => !mine.includes(j));
    await failJobs(db.pool, others.map((j) => ({ id: j.id, token: j.leaseToken, error: 'test', retryable: true })));
    const okJob = mine.find((j) => j.id === ok.json.id)!;
    const badJob = mine.find((j) => j.id === bad.json.id)!;
    await completeJobs(db.pool, [{ id: okJob.id, token: okJob.leaseToken, result: { summary: 'Short.' } }]);
    await failJobs(db.pool, [{ id: badJob.id, token: badJob.leaseToken, error: 'document is empty', retryable: false }]);

    const done = await api.call(apiEvent('GET', `/jobs/${ok.json.id}`, { headers: as(keyB) }));
    expect(done.statusCode).toBe(200);
    expect(done.json).toMatchObject({ status: 'completed', attempts: 1, result: { summary: 'Short.' }, error: null });
    const failed = await api.call(apiEvent('GET', `/jobs/${bad.json.id}`, { headers: as(keyB) }));
    expect(failed.json).toMatchObject({ status: 'failed', error: 'document is empty' });
    // A job waiting for its retry is queued, with the time of its next attempt.
    const retrying = await api.call(apiEvent('GET', `/jobs/${others[0]!.id}`, { headers: as(others[0]!.clientId === ok.json.clientId ? keyB : keyA) }));
    if (retrying.statusCode === 200) expect(retrying.json).toMatchObject({ status: 'queued', nextAttemptAt: expect.any(String), error: 'test' });
  });

  it('lists the client\'s own jobs newest first with a cursor, filtered by status', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await api.call(apiEvent('GET', '/jobs', { headers: as(keyA), query: { limit: '2', ...(cursor ? { cursor } : {}) } }));
      expect(res.statusCode).toBe(200);
      seen.push(...res.json.items.map((j: { id: string }) => j.id));
      cursor = res.json.nextCursor ?? undefined;
    } while (cursor);
    const { rows } = await db.pool.query(`SELECT id FROM summary_jobs WHERE client_id = (SELECT id FROM clients WHERE name = 'acme') ORDER BY id DESC`);
    expect(seen).toEqual(rows.map((r) => r.id));
    const queued = await api.call(apiEvent('GET', '/jobs', { headers: as(keyA), query: { status: 'completed' } }));
    expect(queued.json.items.every((j: { status: string }) => j.status === 'completed')).toBe(true);
  });

  it.each([
    [{ cursor: 'not-a-cursor!' }],
    [{ cursor: Buffer.from('j:123').toString('base64url') }],
    [{ limit: '0' }],
    [{ limit: '1000' }],
    [{ status: 'done' }],
    [{ colour: 'red' }],
  ])('rejects bad list parameters %p with 400', async (query) => {
    const res = await api.call(apiEvent('GET', '/jobs', { headers: as(keyA), query }));
    expect(res.statusCode).toBe(400);
    expect(res.headers!['content-type']).toBe('application/problem+json');
  });

  it('answers 400 for a job id that is not a UUID', async () => {
    expect((await api.call(apiEvent('GET', '/jobs/123', { headers: as(keyA) }))).statusCode).toBe(400);
  });
});

describe('cancel and retry', () => {
  it('cancels a queued job once, then says it is no longer queued (409)', async () => {
    const job = await upload(keyA, { content: ARTICLE, options: { runAt: new Date(Date.now() + 60_000).toISOString() } });
    const res = await api.call(apiEvent('POST', `/jobs/${job.json.id}/cancel`, { headers: as(keyA) }));
    expect(res.statusCode).toBe(200);
    expect(res.json.status).toBe('cancelled');
    const again = await api.call(apiEvent('POST', `/jobs/${job.json.id}/cancel`, { headers: as(keyA) }));
    expect(again.statusCode).toBe(409);
    expect(again.json.jobStatus).toBe('cancelled');
  });

  it('re-queues a failed job, and refuses to retry a queued one', async () => {
    const job = await upload(keyA, { content: ARTICLE, options: { maxAttempts: 1, priority: 100 } });
    expect((await api.call(apiEvent('POST', `/jobs/${job.json.id}/retry`, { headers: as(keyA) }))).statusCode).toBe(409);
    const [claimed] = await claimJobs(db.pool, { workerId: 't', limit: 1, leaseSeconds: 30 });
    expect(claimed!.id).toBe(job.json.id);
    await failJobs(db.pool, [{ id: claimed!.id, token: claimed!.leaseToken, error: 'boom', retryable: true }]);
    const res = await api.call(apiEvent('POST', `/jobs/${job.json.id}/retry`, { headers: as(keyA) }));
    expect(res.statusCode).toBe(200);
    expect(res.json).toMatchObject({ status: 'queued', attempts: 0 });
  });
});

describe('tenant isolation', () => {
  it('answers 404 to client B for everything about client A\'s job', async () => {
    const job = await upload(keyA);
    const id = job.json.id;
    for (const [method, path] of [
      ['GET', `/jobs/${id}`],
      ['POST', `/jobs/${id}/cancel`],
      ['POST', `/jobs/${id}/retry`],
    ] as const) {
      const res = await api.call(apiEvent(method, path, { headers: as(keyB) }));
      expect(res.statusCode).toBe(404);
    }
    const list = await api.call(apiEvent('GET', '/jobs', { headers: as(keyB), query: { limit: '100' } }));
    expect(list.json.items.map((j: { id: string }) => j.id)).not.toContain(id);
    const after = await api.call(apiEvent('GET', `/jobs/${id}`, { headers: as(keyA) }));
    expect(after.json.status).toBe('queued');
  });
});

describe('authentication', () => {
  it('answers 401 without a key and with an unknown key, 403 for a revoked key', async () => {
    const none = await api.call(apiEvent('GET', '/jobs'));
    expect(none.statusCode).toBe(401);
    expect(none.json.type).toMatch(/missing-api-key$/);
    expect(none.headers!['www-authenticate']).toBeDefined();
    const wrong = await api.call(apiEvent('GET', '/jobs', { headers: as('sj_wrong') }));
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json.type).toMatch(/invalid-api-key$/);
    const { apiKey } = await createClient(db.pool, 'leaver');
    expect((await api.call(apiEvent('GET', '/jobs', { headers: as(apiKey) }))).statusCode).toBe(200);
    await revokeClient(db.pool, 'leaver');
    const revoked = await api.call(apiEvent('GET', '/jobs', { headers: as(apiKey) }));
    expect(revoked.statusCode).toBe(403);
    expect(revoked.json.type).toMatch(/api-key-revoked$/);
  });

  it('keeps admin operations behind the admin credential', async () => {
    expect((await api.call(apiEvent('GET', '/admin/stats', { headers: as(keyA) }))).statusCode).toBe(403);
    expect((await api.call(apiEvent('GET', '/admin/stats'))).statusCode).toBe(401);
    const stats = await api.call(apiEvent('GET', '/admin/stats', { headers: as(ADMIN_KEY) }));
    expect(stats.statusCode).toBe(200);
    expect(stats.json).toMatchObject({ queued: expect.any(Number), running: expect.any(Number), oldestRunnableAgeSeconds: expect.any(Number) });
    const clients = await api.call(apiEvent('GET', '/admin/clients', { headers: as(ADMIN_KEY) }));
    expect(clients.json.items.map((c: { name: string }) => c.name)).toEqual(expect.arrayContaining(['acme', 'bravo']));
    expect(JSON.stringify(clients.json)).not.toMatch(/api_key_hash|apiKeyHash/);
  });

  it('lets the admin retry any client\'s failed job', async () => {
    await db.pool.query(`UPDATE summary_jobs SET status = 'cancelled', finished_at = now() WHERE status = 'queued'`);
    const job = await upload(keyB, { content: ARTICLE, options: { maxAttempts: 1, priority: 100 } });
    const [claimed] = await claimJobs(db.pool, { workerId: 't', limit: 1, leaseSeconds: 30 });
    await failJobs(db.pool, [{ id: claimed!.id, token: claimed!.leaseToken, error: 'boom', retryable: false }]);
    const res = await api.call(apiEvent('POST', `/admin/jobs/${job.json.id}/retry`, { headers: as(ADMIN_KEY) }));
    expect(res.statusCode).toBe(200);
    expect(res.json.status).toBe('queued');
  });
});

describe('health and routing', () => {
  it('answers /health without a key and without secrets', async () => {
    const res = await api.call(apiEvent('GET', '/health'));
    expect(res).toMatchObject({ statusCode: 200, json: { status: 'ok' } });
  });

  it('answers 404 for unknown paths and 405 with Allow for a wrong method', async () => {
    expect((await api.call(apiEvent('GET', '/nope'))).statusCode).toBe(404);
    const res = await api.call(apiEvent('DELETE', '/uploads', { headers: as(keyA) }));
    expect(res.statusCode).toBe(405);
    expect(res.headers!.allow).toBe('POST');
  });

  it('hides internal errors behind a generic 500 problem without a stack trace', async () => {
    const broken = testApi(db.pool, {
      pool: async () => {
        throw new Error('connect ECONNREFUSED 10.0.0.1:5432 secret-host');
      },
    });
    const res = await broken.call(apiEvent('GET', '/health'));
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toMatch(/ECONNREFUSED|secret-host|at /);
  });
});

describe('schedules and limits over the API', () => {
  it('creates, lists and deletes a client\'s recurring digest, and rejects a bad cron', async () => {
    const made = await api.call(apiEvent('POST', '/schedules', { headers: as(keyA), body: { name: 'daily', cron: '0 7 * * *', timezone: 'Europe/Paris', options: { windowHours: 24 } } }));
    expect(made.statusCode).toBe(200);
    expect(made.json).toMatchObject({ name: 'daily', cron: '0 7 * * *', timezone: 'Europe/Paris', jobType: 'digest', nextRunAt: expect.any(String) });
    const bad = await api.call(apiEvent('POST', '/schedules', { headers: as(keyA), body: { name: 'x', cron: '99 * * * *' } }));
    expect(bad.statusCode).toBe(400);
    expect((await api.call(apiEvent('GET', '/schedules', { headers: as(keyB) }))).json.items).toEqual([]);
    expect((await api.call(apiEvent('GET', '/schedules', { headers: as(keyA) }))).json.items.map((s: { name: string }) => s.name)).toEqual(['daily']);
    expect((await api.call(apiEvent('DELETE', '/schedules/daily', { headers: as(keyB) }))).statusCode).toBe(404);
    expect((await api.call(apiEvent('DELETE', '/schedules/daily', { headers: as(keyA) }))).statusCode).toBe(204);
  });

  it('lets only the admin set, list and remove rate limits', async () => {
    const body = { scope: 'job_type', key: 'summarize', maxPerInterval: 100, intervalSeconds: 60 };
    expect((await api.call(apiEvent('POST', '/admin/limits', { headers: as(keyA), body }))).statusCode).toBe(403);
    expect((await api.call(apiEvent('POST', '/admin/limits', { headers: as(ADMIN_KEY), body }))).statusCode).toBe(200);
    expect((await api.call(apiEvent('POST', '/admin/limits', { headers: as(ADMIN_KEY), body: { scope: 'job_type', key: 'summarize' } }))).statusCode).toBe(400);
    const list = await api.call(apiEvent('GET', '/admin/limits', { headers: as(ADMIN_KEY) }));
    expect(list.json.items).toEqual([{ scope: 'job_type', key: 'summarize', maxPerInterval: 100, intervalSeconds: 60, maxRunning: null }]);
    expect((await api.call(apiEvent('DELETE', '/admin/limits/job_type/summarize', { headers: as(ADMIN_KEY) }))).statusCode).toBe(204);
  });
});

describe('client management over the admin API', () => {
  it('creates a client whose key works at once, refuses a duplicate, and revokes it', async () => {
    const made = await api.call(apiEvent('POST', '/admin/clients', { headers: as(ADMIN_KEY), body: { name: 'viaapi', weight: 2 } }));
    expect(made.statusCode).toBe(201);
    expect(made.json).toMatchObject({ name: 'viaapi', weight: 2, apiKey: expect.stringMatching(/^sj_/) });
    const { rows } = await db.pool.query(`SELECT api_key_hash FROM clients WHERE name = 'viaapi'`);
    expect(rows[0].api_key_hash).not.toContain(made.json.apiKey);
    expect((await api.call(apiEvent('GET', '/jobs', { headers: as(made.json.apiKey) }))).statusCode).toBe(200);
    expect((await api.call(apiEvent('POST', '/admin/clients', { headers: as(ADMIN_KEY), body: { name: 'viaapi' } }))).statusCode).toBe(409);
    expect((await api.call(apiEvent('POST', '/admin/clients', { headers: as(keyA), body: { name: 'sneaky' } }))).statusCode).toBe(403);
    expect((await api.call(apiEvent('POST', '/admin/clients/viaapi/revoke', { headers: as(ADMIN_KEY) }))).statusCode).toBe(200);
    expect((await api.call(apiEvent('GET', '/jobs', { headers: as(made.json.apiKey) }))).statusCode).toBe(403);
  });
});
