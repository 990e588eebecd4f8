import { Logger } from '@aws-lambda-powertools/logger';
import { randomBytes } from 'node:crypto';
import { createClient, revokeClient } from '../lambda/core/clients';
import { apiConfig } from '../lambda/core/config';
import { claimJobs, completeJobs, failJobs } from '../lambda/core/queue';
import { extractText, MAX_TEXT_CHARACTERS } from '../lambda/core/summarize';
import { ADMIN_KEY, apiEvent, testApi } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/db';

/**
 * The API over a real database. Every test makes its own clients (and, where
 * it claims jobs, which takes any runnable job, its own database), so no test
 * reads rows another one left.
 */

let db: TestDatabase;
let api: ReturnType<typeof testApi>;
const extraDatabases: TestDatabase[] = [];
const ARTICLE = 'Postgres is a database. It can also be a queue. Many teams run their jobs on it.';

beforeAll(async () => {
  db = await createTestDatabase();
  api = testApi(db.pool);
});
afterAll(async () => {
  await Promise.all([db, ...extraDatabases].map((d) => d.drop()));
});

/** A client of this test's own: its name, id and key. */
async function newClient(pool = db.pool) {
  const name = `c-${randomBytes(5).toString('hex')}`;
  const { client, apiKey } = await createClient(pool, name);
  return { name, id: client.id, key: apiKey };
}

/** A database, API and client of the test's own, for tests that claim jobs. */
async function ownDatabase() {
  const own = await createTestDatabase();
  extraDatabases.push(own);
  const ownApi = testApi(own.pool);
  return { db: own, api: ownApi, client: await newClient(own.pool) };
}

const as = (key: string, extra: Record<string, string> = {}) => ({ 'x-api-key': key, ...extra });
/** Rows of one client: what a rejected request must leave unchanged. */
async function rowsOf(clientId: string, pool = db.pool) {
  const { rows } = await pool.query(
    `SELECT (SELECT count(*)::int FROM summary_jobs WHERE client_id = $1) AS jobs, (SELECT count(*)::int FROM uploads WHERE client_id = $1) AS uploads`,
    [clientId],
  );
  return rows[0] as { jobs: number; uploads: number };
}

async function upload(key: string, body: object = { content: ARTICLE }, headers: Record<string, string> = {}, on = api) {
  return on.call(apiEvent('POST', '/uploads', { headers: as(key, headers), body }));
}

function expectProblem(res: { statusCode: number; headers?: Record<string, unknown>; json: any }, status: number, type?: string) {
  expect({ status: res.statusCode, contentType: res.headers?.['content-type'] }).toEqual({ status, contentType: 'application/problem+json' });
  expect(res.json).toMatchObject({ status, type: expect.stringContaining('/problems/'), title: expect.any(String), detail: expect.any(String) });
  if (type) expect(res.json.type).toBe(`https://summary-jobs.dev/problems/${type}`);
}

describe('POST /uploads', () => {
  it('stores a JSON upload and its job, answers 202 with a Location, and nudges the processor', async () => {
    const { key } = await newClient();
    const before = api.nudges.length;
    const res = await upload(key, { content: ARTICLE, filename: 'a.txt', options: { priority: 5, maxSentences: 2 } });
    expect(res.statusCode).toBe(202);
    expect(res.headers!.location).toBe(`/jobs/${res.json.id}`);
    expect(res.json).toMatchObject({ status: 'queued', attempts: 0, priority: 5, filename: 'a.txt', contentType: 'text/plain', result: null });
    const { rows } = await db.pool.query(
      `SELECT u.content, u.content_type, j.payload FROM summary_jobs j JOIN uploads u ON u.id = j.upload_id WHERE j.id = $1`,
      [res.json.id],
    );
    expect(rows[0].content.toString()).toBe(ARTICLE);
    expect(rows[0].content_type).toBe('text/plain');
    expect(rows[0].payload).toMatchObject({ maxSentences: 2 });
    expect(api.nudges.length).toBe(before + 1);
  });

  it('takes raw text/markdown, text/html and PDF bodies with options in the query string', async () => {
    const { key } = await newClient();
    const md = await api.call(
      apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/markdown; charset=utf-8' }), body: '# Title\n\nSome text.', query: { filename: 'r.md', priority: '-3' } }),
    );
    expect(md.statusCode).toBe(202);
    expect(md.json).toMatchObject({ contentType: 'text/markdown', filename: 'r.md', priority: -3 });
    const pdf = await api.call(apiEvent('POST', '/uploads', { headers: as(key, { 'Content-Type': 'application/pdf' }), body: Buffer.from('%PDF-1.4 bytes') }));
    expect(pdf.statusCode).toBe(202);
    const stored = await db.pool.query(`SELECT content FROM uploads WHERE id = (SELECT upload_id FROM summary_jobs WHERE id = $1)`, [pdf.json.id]);
    expect(stored.rows[0].content.toString()).toBe('%PDF-1.4 bytes');
  });

  it('decodes a base64 body of every type (all bodies arrive as bytes) and still takes a plain text body', async () => {
    const { key } = await newClient();
    const viaBytes = apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: 'Sent as bytes. Decoded by the handler.' });
    expect(viaBytes.isBase64Encoded).toBe(true);
    const plain = apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: 'Sent as a string. Read as UTF-8.', base64: false });
    expect(plain.isBase64Encoded).toBe(false);
    for (const [event, text] of [[viaBytes, 'Sent as bytes. Decoded by the handler.'], [plain, 'Sent as a string. Read as UTF-8.']] as const) {
      const res = await api.call(event);
      expect(res.statusCode).toBe(202);
      const { rows } = await db.pool.query(`SELECT content FROM uploads WHERE id = $1`, [res.json.uploadId]);
      expect(rows[0].content.toString('utf8')).toBe(text);
    }
  });

  it('keeps a non-UTF-8 charset with the stored bytes, so the summarizer reads the text right', async () => {
    const { key } = await newClient();
    const latin1 = Buffer.from('Le café est fermé. Très bien.', 'latin1');
    const res = await api.call(apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain; charset=ISO-8859-1' }), body: latin1 }));
    expect(res.statusCode).toBe(202);
    expect(res.json.contentType).toBe('text/plain');
    const { rows } = await db.pool.query(`SELECT content, content_type FROM uploads WHERE id = $1`, [res.json.uploadId]);
    expect(Buffer.compare(rows[0].content, latin1)).toBe(0);
    expect(rows[0].content_type).toBe('text/plain; charset=windows-1252');
    expect(await extractText({ content: rows[0].content, contentType: rows[0].content_type })).toBe('Le café est fermé. Très bien.');
    // UTF-16 with a byte order mark needs no charset.
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Sixteen bits a unit. Still text.', 'utf16le')]);
    expect((await api.call(apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: utf16 }))).statusCode).toBe(202);
  });

  it('schedules a job for later with options.runAt, and takes a runAt up to a day in the past', async () => {
    const { key } = await newClient();
    const runAt = new Date(Date.now() + 3600_000).toISOString();
    expect((await upload(key, { content: ARTICLE, options: { runAt } })).json.runAt).toBe(runAt);
    const lately = new Date(Date.now() - 3600_000).toISOString();
    expect((await upload(key, { content: ARTICLE, options: { runAt: lately } })).statusCode).toBe(202);
  });

  it('replays the first job for the same Idempotency-Key and body, and refuses another body with 422', async () => {
    const a = await newClient();
    const b = await newClient();
    const first = await upload(a.key, { content: ARTICLE }, { 'Idempotency-Key': 'order-1' });
    const again = await upload(a.key, { content: ARTICLE }, { 'Idempotency-Key': 'order-1' });
    expect(again.statusCode).toBe(202);
    expect(again.json.id).toBe(first.json.id);
    expect(again.headers!['idempotent-replayed']).toBe('true');
    const other = await upload(a.key, { content: ARTICLE + ' More.' }, { 'Idempotency-Key': 'order-1' });
    expectProblem(other, 422, 'idempotency-key-reused');
    expect(await rowsOf(a.id)).toEqual({ jobs: 1, uploads: 1 });
    // The key belongs to its client: another client may use it independently.
    const fromB = await upload(b.key, { content: ARTICLE }, { 'Idempotency-Key': 'order-1' });
    expect(fromB.json.id).not.toBe(first.json.id);
  });

  it('keeps one job for concurrent requests with the same key', async () => {
    const { key, id } = await newClient();
    const results = await Promise.all(Array.from({ length: 8 }, () => upload(key, { content: 'Same doc. Twice.' }, { 'Idempotency-Key': 'race-1' })));
    expect(new Set(results.map((r) => r.json.id)).size).toBe(1);
    expect(await rowsOf(id)).toEqual({ jobs: 1, uploads: 1 });
  });

  const day = 24 * 3600_000;
  it.each([
    ['a body over the limit', { 'content-type': 'text/plain' }, 'x'.repeat(70 * 1024), 413, 'payload-too-large', null],
    ['an unsupported content type', { 'content-type': 'image/png' }, 'abc', 415, 'unsupported-media-type', null],
    ['no content type', {}, 'abc', 415, 'unsupported-media-type', null],
    ['an unknown charset', { 'content-type': 'text/plain; charset=klingon' }, 'Some text.', 415, 'unsupported-charset', null],
    ['JSON declared in another charset', { 'content-type': 'application/json; charset=iso-8859-1' }, '{"content":"a"}', 415, 'unsupported-charset', null],
    ['a gzip-encoded body', { 'content-type': 'text/plain', 'content-encoding': 'gzip' }, 'Some text.', 415, 'unsupported-content-encoding', null],
    ['invalid UTF-8 in a text body', { 'content-type': 'text/plain' }, Buffer.from([0x41, 0x20, 0xc3, 0x28, 0x42]), 400, 'invalid-text', null],
    ['invalid UTF-8 in a JSON body', { 'content-type': 'application/json' }, Buffer.concat([Buffer.from('{"content":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), 400, 'invalid-text-encoding', null],
    ['binary data sent as text', { 'content-type': 'text/plain' }, Buffer.from(Array.from({ length: 200 }, (_, i) => i % 32)), 400, 'invalid-text', null],
    ['a lone surrogate in the filename', { 'content-type': 'application/json' }, '{"content":"a","filename":"\\ud800.txt"}', 400, 'invalid-text', null],
    ['a lone surrogate in a query filename', { 'content-type': 'text/plain' }, 'Some text.', 400, 'invalid-text', { filename: 'a\ud800' }],
    ['malformed JSON', { 'content-type': 'application/json' }, '{"content": ', 400, 'malformed-json', null],
    ['an unknown field', { 'content-type': 'application/json' }, '{"content":"a","colour":"red"}', 400, 'unknown-field', null],
    ['a wrong type', { 'content-type': 'application/json' }, '{"content":42}', 400, 'invalid-request', null],
    ['a huge priority', { 'content-type': 'application/json' }, '{"content":"a","options":{"priority":1e9}}', 400, 'invalid-request', null],
    ['a bad runAt', { 'content-type': 'application/json' }, '{"content":"a","options":{"runAt":"tomorrow"}}', 400, 'invalid-date', null],
    ['an impossible runAt (February 30)', { 'content-type': 'application/json' }, '{"content":"a","options":{"runAt":"2027-02-30T00:00:00Z"}}', 400, 'invalid-date', null],
    ['a runAt at hour 24', { 'content-type': 'application/json' }, `{"content":"a","options":{"runAt":"${new Date(Date.now() + day).toISOString().slice(0, 10)}T24:00:00Z"}}`, 400, 'invalid-date', null],
    ['a runAt in year 1', { 'content-type': 'application/json' }, '{"content":"a","options":{"runAt":"0001-01-01T00:00:00Z"}}', 400, 'invalid-date', null],
    ['a runAt two days back', { 'content-type': 'application/json' }, `{"content":"a","options":{"runAt":"${new Date(Date.now() - 2 * day).toISOString()}"}}`, 400, 'invalid-date', null],
    ['a runAt two years ahead', { 'content-type': 'application/json' }, `{"content":"a","options":{"runAt":"${new Date(Date.now() + 730 * day).toISOString()}"}}`, 400, 'invalid-date', null],
    ['an empty document', { 'content-type': 'text/plain' }, '   ', 400, 'empty-document', null],
    ['a bad dependency id', { 'content-type': 'application/json' }, '{"content":"a","options":{"dependsOn":["nope"]}}', 400, 'invalid-request', null],
  ] as const)('rejects %s with a problem and stores nothing', async (_, headers, body, status, type, query: Record<string, string> | null) => {
    const { key, id } = await newClient();
    const res = await api.call(apiEvent('POST', '/uploads', { headers: as(key, headers), body, ...(query ? { query } : {}) }));
    expectProblem(res, status, type);
    expect(await rowsOf(id)).toEqual({ jobs: 0, uploads: 0 });
  });

  it(`refuses at upload a text longer than the summarizer's ${MAX_TEXT_CHARACTERS} characters (413 naming the limit), and takes one just under`, async () => {
    const { key, id } = await newClient();
    const big = testApi(db.pool, { config: apiConfig({ MAX_UPLOAD_BYTES: String(4 * 1024 * 1024) }) });
    const sentence = 'The queue kept every job. ';
    const text = (n: number) => sentence.repeat(Math.ceil(n / sentence.length)).slice(0, n);
    const tooLong = await big.call(apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: text(2_600_000) }));
    expectProblem(tooLong, 413, 'text-too-long');
    expect(tooLong.json.limit).toBe(MAX_TEXT_CHARACTERS);
    expect(tooLong.json.detail).toContain(String(MAX_TEXT_CHARACTERS));
    expect(await rowsOf(id)).toEqual({ jobs: 0, uploads: 0 });
    const fits = await big.call(apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: text(MAX_TEXT_CHARACTERS - 1000) }));
    expect(fits.statusCode).toBe(202);
  });

  it('rejects a dependency on another client\'s job as unknown (422) and stores nothing', async () => {
    const a = await newClient();
    const b = await newClient();
    const bJob = await upload(b.key);
    const res = await upload(a.key, { content: ARTICLE, options: { dependsOn: [bJob.json.id] } });
    expectProblem(res, 422);
    expect(res.json.detail).toMatch(/unknown job id/);
    expect(await rowsOf(a.id)).toEqual({ jobs: 0, uploads: 0 });
  });
});

describe('GET /jobs and /jobs/{id}', () => {
  it('shows a completed job with its summary, a failed one with its error, and one waiting for its retry', async () => {
    const own = await ownDatabase();
    const { key } = own.client;
    const ok = await upload(key, { content: 'Completed doc.' }, {}, own.api);
    const bad = await upload(key, { content: 'Failing doc.', options: { maxAttempts: 1 } }, {}, own.api);
    const again = await upload(key, { content: 'Retried doc.', options: { maxAttempts: 3 } }, {}, own.api);
    const claimed = await claimJobs(own.db.pool, { workerId: 't', limit: 10, leaseSeconds: 30 });
    expect(claimed.map((j) => j.id).sort()).toEqual([ok.json.id, bad.json.id, again.json.id].sort());
    const lease = (id: string) => claimed.find((j) => j.id === id)!.leaseToken;
    await completeJobs(own.db.pool, [{ id: ok.json.id, token: lease(ok.json.id), result: { summary: 'Short.' } }]);
    await failJobs(own.db.pool, [
      { id: bad.json.id, token: lease(bad.json.id), error: 'document is empty', retryable: false },
      { id: again.json.id, token: lease(again.json.id), error: 'throttled', retryable: true },
    ]);

    const get = async (id: string) => own.api.call(apiEvent('GET', `/jobs/${id}`, { headers: as(key) }));
    const done = await get(ok.json.id);
    expect(done.statusCode).toBe(200);
    expect(done.json).toMatchObject({ status: 'completed', attempts: 1, result: { summary: 'Short.' }, error: null });
    expect((await get(bad.json.id)).json).toMatchObject({ status: 'failed', error: 'document is empty', result: null });
    const retrying = await get(again.json.id);
    expect(retrying.statusCode).toBe(200);
    expect(retrying.json).toMatchObject({ status: 'queued', attempts: 1, nextAttemptAt: expect.any(String), error: 'throttled' });
  });

  it('lists the client\'s own jobs newest first with a cursor, filtered by status', async () => {
    const { key, id } = await newClient();
    const other = await newClient();
    await upload(other.key);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await upload(key, { content: `${ARTICLE} Number ${i}.` })).json.id);
    const cancelled = [ids[1]!, ids[3]!];
    for (const jobId of cancelled) expect((await api.call(apiEvent('POST', `/jobs/${jobId}/cancel`, { headers: as(key) }))).statusCode).toBe(200);

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await api.call(apiEvent('GET', '/jobs', { headers: as(key), query: { limit: '2', ...(cursor ? { cursor } : {}) } }));
      expect(res.statusCode).toBe(200);
      expect(res.json.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.json.items.map((j: { id: string }) => j.id));
      cursor = res.json.nextCursor ?? undefined;
    } while (cursor);
    const { rows } = await db.pool.query(`SELECT id FROM summary_jobs WHERE client_id = $1 ORDER BY id DESC`, [id]);
    expect(rows.map((r) => r.id)).toHaveLength(5);
    expect(seen).toEqual(rows.map((r) => r.id));

    const byStatus = async (status: string) =>
      (await api.call(apiEvent('GET', '/jobs', { headers: as(key), query: { status } }))).json.items.map((j: { id: string; status: string }) => [j.id, j.status]);
    expect(await byStatus('cancelled')).toEqual([...cancelled].reverse().map((c) => [c, 'cancelled']));
    expect(await byStatus('queued')).toEqual([ids[4], ids[2], ids[0]].map((q) => [q, 'queued']));
    expect(await byStatus('completed')).toEqual([]);
  });

  it.each([
    [{ cursor: 'not-a-cursor!' }],
    [{ cursor: Buffer.from('j:123').toString('base64url') }],
    [{ limit: '0' }],
    [{ limit: '1000' }],
    [{ status: 'done' }],
    [{ colour: 'red' }],
    // A query parsed from the wire has these as own names (JSON.parse, as the gateway's event is).
    [JSON.parse('{"constructor":"x"}')],
    [JSON.parse('{"__proto__":"x"}')],
  ])('rejects bad list parameters %p with 400', async (query: Record<string, string>) => {
    const { key } = await newClient();
    const res = await api.call(apiEvent('GET', '/jobs', { headers: as(key), query }));
    expectProblem(res, 400);
  });

  it('answers 400 for a job id that is not a UUID', async () => {
    const { key } = await newClient();
    expectProblem(await api.call(apiEvent('GET', '/jobs/123', { headers: as(key) })), 400, 'invalid-job-id');
  });
});

describe('cancel and retry', () => {
  it('cancels a queued job once, then says it is no longer queued (409)', async () => {
    const { key } = await newClient();
    const job = await upload(key, { content: ARTICLE, options: { runAt: new Date(Date.now() + 60_000).toISOString() } });
    const res = await api.call(apiEvent('POST', `/jobs/${job.json.id}/cancel`, { headers: as(key) }));
    expect(res.statusCode).toBe(200);
    expect(res.json.status).toBe('cancelled');
    const again = await api.call(apiEvent('POST', `/jobs/${job.json.id}/cancel`, { headers: as(key) }));
    expectProblem(again, 409, 'invalid-state');
    expect(again.json.jobStatus).toBe('cancelled');
  });

  it('re-queues a failed job, and refuses to retry a queued one', async () => {
    const own = await ownDatabase();
    const { key } = own.client;
    const job = await upload(key, { content: ARTICLE, options: { maxAttempts: 1 } }, {}, own.api);
    expectProblem(await own.api.call(apiEvent('POST', `/jobs/${job.json.id}/retry`, { headers: as(key) })), 409, 'invalid-state');
    const [claimed] = await claimJobs(own.db.pool, { workerId: 't', limit: 1, leaseSeconds: 30 });
    expect(claimed!.id).toBe(job.json.id);
    await failJobs(own.db.pool, [{ id: claimed!.id, token: claimed!.leaseToken, error: 'boom', retryable: true }]);
    const res = await own.api.call(apiEvent('POST', `/jobs/${job.json.id}/retry`, { headers: as(key) }));
    expect(res.statusCode).toBe(200);
    expect(res.json).toMatchObject({ status: 'queued', attempts: 0 });
  });
});

describe('retrying a job that failed because of its dependency', () => {
  it('answers 409 naming the dependency until it has completed, then runs the job again', async () => {
    const own = await ownDatabase();
    const { key } = own.client;
    const parent = await upload(key, { content: 'The parent. It fails.', options: { maxAttempts: 1 } }, {}, own.api);
    const child = await upload(key, { content: 'The child. It waits.', options: { dependsOn: [parent.json.id] } }, {}, own.api);
    const [claimed] = await claimJobs(own.db.pool, { workerId: 't', limit: 10, leaseSeconds: 30 });
    expect(claimed!.id).toBe(parent.json.id);
    await failJobs(own.db.pool, [{ id: claimed!.id, token: claimed!.leaseToken, error: 'corrupt', retryable: false }]);
    const retryChild = () => own.api.call(apiEvent('POST', `/jobs/${child.json.id}/retry`, { headers: as(key) }));
    const blocked = await retryChild();
    expectProblem(blocked, 409, 'dependency-not-completed');
    expect(blocked.json.dependency).toEqual({ id: parent.json.id, status: 'failed' });
    expect(blocked.json.detail).toContain(parent.json.id);
    // The parent is queued again, not completed: still refused, and the problem says so.
    expect((await own.api.call(apiEvent('POST', `/jobs/${parent.json.id}/retry`, { headers: as(key) }))).statusCode).toBe(200);
    expect((await retryChild()).json.dependency).toEqual({ id: parent.json.id, status: 'queued' });
    const [again] = await claimJobs(own.db.pool, { workerId: 't', limit: 10, leaseSeconds: 30 });
    await completeJobs(own.db.pool, [{ id: again!.id, token: again!.leaseToken, result: { summary: 'Done.' } }]);
    const retried = await retryChild();
    expect(retried.statusCode).toBe(200);
    expect(retried.json).toMatchObject({ status: 'queued', attempts: 0 });
  });
});

describe('tenant isolation', () => {
  it('answers 404 to client B for everything about client A\'s job', async () => {
    const a = await newClient();
    const b = await newClient();
    const job = await upload(a.key);
    const id = job.json.id;
    for (const [method, path] of [
      ['GET', `/jobs/${id}`],
      ['POST', `/jobs/${id}/cancel`],
      ['POST', `/jobs/${id}/retry`],
    ] as const) {
      expectProblem(await api.call(apiEvent(method, path, { headers: as(b.key) })), 404, 'not-found');
    }
    const list = await api.call(apiEvent('GET', '/jobs', { headers: as(b.key), query: { limit: '100' } }));
    expect(list.json.items).toEqual([]);
    const after = await api.call(apiEvent('GET', `/jobs/${id}`, { headers: as(a.key) }));
    expect(after.json.status).toBe('queued');
  });
});

describe('authentication', () => {
  it('answers 401 without a key and with an unknown key, 403 for a revoked key', async () => {
    const none = await api.call(apiEvent('GET', '/jobs'));
    expectProblem(none, 401, 'missing-api-key');
    expect(none.headers!['www-authenticate']).toBeDefined();
    expectProblem(await api.call(apiEvent('GET', '/jobs', { headers: as('sj_wrong') })), 401, 'invalid-api-key');
    const leaver = await newClient();
    expect((await api.call(apiEvent('GET', '/jobs', { headers: as(leaver.key) }))).statusCode).toBe(200);
    await revokeClient(db.pool, leaver.name);
    expectProblem(await api.call(apiEvent('GET', '/jobs', { headers: as(leaver.key) })), 403, 'api-key-revoked');
  });

  it('keeps admin operations behind the admin credential: an unknown key is 401, a client\'s key 403', async () => {
    const a = await newClient();
    const b = await newClient();
    expectProblem(await api.call(apiEvent('GET', '/admin/stats', { headers: as(a.key) })), 403, 'admin-only');
    expectProblem(await api.call(apiEvent('GET', '/admin/stats')), 401, 'missing-api-key');
    expectProblem(await api.call(apiEvent('GET', '/admin/stats', { headers: as(`${ADMIN_KEY}x`) })), 401, 'invalid-api-key');
    expectProblem(await api.call(apiEvent('GET', '/admin/stats', { headers: as('x'.repeat(500)) })), 401, 'invalid-api-key');
    await revokeClient(db.pool, b.name);
    expectProblem(await api.call(apiEvent('GET', '/admin/stats', { headers: as(b.key) })), 403);
    const stats = await api.call(apiEvent('GET', '/admin/stats', { headers: as(ADMIN_KEY) }));
    expect(stats.statusCode).toBe(200);
    expect(stats.json).toMatchObject({ queued: expect.any(Number), running: expect.any(Number), oldestRunnableAgeSeconds: expect.any(Number) });
    const clients = await api.call(apiEvent('GET', '/admin/clients', { headers: as(ADMIN_KEY) }));
    expect(clients.json.items.map((c: { name: string }) => c.name)).toEqual(expect.arrayContaining([a.name, b.name]));
    expect(JSON.stringify(clients.json)).not.toMatch(/api_key_hash|apiKeyHash/);
  });

  it('refuses a request with two x-api-key headers (400), even when both are the same valid key', async () => {
    const a = await newClient();
    const b = await newClient();
    for (const keys of [[a.key, b.key], [a.key, a.key], [a.key, ADMIN_KEY]]) {
      const res = await api.call(apiEvent('GET', '/jobs', { repeatedHeaders: { 'x-api-key': keys } }));
      expectProblem(res, 400, 'duplicate-header');
    }
    // Two casings of one header are the same header.
    expectProblem(await api.call(apiEvent('GET', '/jobs', { headers: { 'x-api-key': a.key, 'X-Api-Key': b.key } })), 400, 'duplicate-header');
  });

  it('lets the admin retry any client\'s failed job', async () => {
    const own = await ownDatabase();
    const job = await upload(own.client.key, { content: ARTICLE, options: { maxAttempts: 1 } }, {}, own.api);
    const [claimed] = await claimJobs(own.db.pool, { workerId: 't', limit: 1, leaseSeconds: 30 });
    expect(claimed!.id).toBe(job.json.id);
    await failJobs(own.db.pool, [{ id: claimed!.id, token: claimed!.leaseToken, error: 'boom', retryable: false }]);
    const res = await own.api.call(apiEvent('POST', `/admin/jobs/${job.json.id}/retry`, { headers: as(ADMIN_KEY) }));
    expect(res.statusCode).toBe(200);
    expect(res.json.status).toBe('queued');
  });
});

describe('health, routing and the shape of requests', () => {
  it('answers /health without a key and without secrets', async () => {
    const res = await api.call(apiEvent('GET', '/health'));
    expect(res).toMatchObject({ statusCode: 200, json: { status: 'ok' } });
  });

  it('reads query and header names as data: Object.prototype names are names like any other', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const query = JSON.parse(`{"${name}":"x"}`) as Record<string, string>;
      const headers = JSON.parse(`{"${name}":"x"}`) as Record<string, string>;
      expect((await api.call(apiEvent('GET', '/health', { query, headers }))).statusCode).toBe(200);
      expectProblem(await api.call(apiEvent('GET', '/jobs', { query, headers })), 401, 'missing-api-key');
    }
  });

  it('answers 404 for unknown paths and 405 with Allow for a wrong method', async () => {
    const { key } = await newClient();
    expectProblem(await api.call(apiEvent('GET', '/nope')), 404, 'not-found');
    const res = await api.call(apiEvent('DELETE', '/uploads', { headers: as(key) }));
    expectProblem(res, 405, 'method-not-allowed');
    expect(res.headers!.allow).toBe('POST');
  });

  it.each(['//admin/stats', '/jobs//x', '/./stats', '/jobs/../admin/stats', '/admin/../stats', '//stats', 'stats'])(
    'refuses the path %s before routing (400), never serving another route',
    async (path) => {
      const { key } = await newClient();
      for (const k of [key, ADMIN_KEY]) expectProblem(await api.call(apiEvent('GET', path, { headers: as(k) })), 400, 'invalid-path');
    },
  );

  it('takes Content-Encoding identity, and refuses any other on every route', async () => {
    const { key } = await newClient();
    expect((await api.call(apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain', 'Content-Encoding': 'identity' }), body: ARTICLE }))).statusCode).toBe(202);
    for (const encoding of ['gzip', 'br', 'deflate', 'gzip, identity']) {
      expectProblem(
        await api.call(apiEvent('POST', '/schedules', { headers: as(key, { 'Content-Encoding': encoding }), body: { name: 'n', cron: '0 7 * * *' } })),
        415,
        'unsupported-content-encoding',
      );
    }
  });

  it('hides internal errors behind a generic 500 problem without a stack trace', async () => {
    const broken = testApi(db.pool, {
      adminKey: async () => {
        throw new Error('secret store said no: arn:aws:secretsmanager:secret-arn');
      },
    });
    const res = await broken.call(apiEvent('GET', '/admin/stats', { headers: as(ADMIN_KEY) }));
    expectProblem(res, 500, 'internal');
    expect(res.body).not.toMatch(/secret|arn:|at /);
  });

  it('logs each request with its own keys, which never reach a later line of the shared logger', async () => {
    const { id, key } = await newClient();
    const shared = new Logger({ serviceName: 'summary-jobs', logLevel: 'INFO' });
    const lines: Record<string, unknown>[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      return true;
    });
    try {
      const logged = testApi(db.pool, { logger: shared });
      expect((await upload(key, { content: ARTICLE }, {}, logged)).statusCode).toBe(202);
      shared.info('a processor line');
    } finally {
      write.mockRestore();
    }
    const accepted = lines.find((l) => l.message === 'upload accepted');
    expect(accepted).toMatchObject({ clientId: id, path: '/uploads', method: 'POST', requestId: expect.any(String) });
    const later = lines.find((l) => l.message === 'a processor line')!;
    expect(later).toBeDefined();
    for (const k of ['clientId', 'path', 'method', 'requestId']) expect(later).not.toHaveProperty(k);
  });
});

describe('schedules and limits over the API', () => {
  it('creates, lists and deletes a client\'s recurring digest, and rejects a bad cron', async () => {
    const a = await newClient();
    const b = await newClient();
    const made = await api.call(apiEvent('POST', '/schedules', { headers: as(a.key), body: { name: 'daily', cron: '0 7 * * *', timezone: 'Europe/Paris', options: { windowHours: 24 } } }));
    expect(made.statusCode).toBe(200);
    expect(made.json).toMatchObject({ name: 'daily', cron: '0 7 * * *', timezone: 'Europe/Paris', jobType: 'digest', nextRunAt: expect.any(String) });
    const bad = await api.call(apiEvent('POST', '/schedules', { headers: as(a.key), body: { name: 'x', cron: '99 * * * *' } }));
    expectProblem(bad, 400, 'invalid-schedule');
    expect(bad.json.detail).toMatch(/^cron /);
    expect((await api.call(apiEvent('GET', '/schedules', { headers: as(b.key) }))).json.items).toEqual([]);
    expect((await api.call(apiEvent('GET', '/schedules', { headers: as(a.key) }))).json.items.map((s: { name: string }) => s.name)).toEqual(['daily']);
    expectProblem(await api.call(apiEvent('DELETE', '/schedules/daily', { headers: as(b.key) })), 404);
    expect((await api.call(apiEvent('DELETE', '/schedules/daily', { headers: as(a.key) }))).statusCode).toBe(204);
  });

  it.each(['Mars/Olympus', 'Europe/Atlantis', 'UTC+99'])('answers a schedule in the unknown time zone %s with a 400 naming the timezone field', async (timezone) => {
    const { key, id } = await newClient();
    const res = await api.call(apiEvent('POST', '/schedules', { headers: as(key), body: { name: 'tz', cron: '0 7 * * *', timezone } }));
    expectProblem(res, 400, 'invalid-schedule');
    expect(res.json.detail).toMatch(/^timezone /);
    expect(res.json.detail).not.toMatch(/CronDate|unhandled timestamp/);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM recurring_jobs WHERE client_id = $1`, [id]);
    expect(rows[0].n).toBe(0);
  });

  it('lets only the admin set, list and remove rate limits', async () => {
    const own = await ownDatabase();
    const body = { scope: 'job_type', key: 'summarize', maxPerInterval: 100, intervalSeconds: 60 };
    expectProblem(await own.api.call(apiEvent('POST', '/admin/limits', { headers: as(own.client.key), body })), 403, 'admin-only');
    expect((await own.api.call(apiEvent('POST', '/admin/limits', { headers: as(ADMIN_KEY), body }))).statusCode).toBe(200);
    expectProblem(await own.api.call(apiEvent('POST', '/admin/limits', { headers: as(ADMIN_KEY), body: { scope: 'job_type', key: 'summarize' } })), 400);
    const list = await own.api.call(apiEvent('GET', '/admin/limits', { headers: as(ADMIN_KEY) }));
    expect(list.json.items).toEqual([{ scope: 'job_type', key: 'summarize', maxPerInterval: 100, intervalSeconds: 60, maxRunning: null }]);
    expect((await own.api.call(apiEvent('DELETE', '/admin/limits/job_type/summarize', { headers: as(ADMIN_KEY) }))).statusCode).toBe(204);
    expect((await own.api.call(apiEvent('GET', '/admin/limits', { headers: as(ADMIN_KEY) }))).json.items).toEqual([]);
  });
});

describe('client management over the admin API', () => {
  it('creates a client whose key works at once, refuses a duplicate, and revokes it', async () => {
    const { key } = await newClient();
    const name = `api-${randomBytes(4).toString('hex')}`;
    const made = await api.call(apiEvent('POST', '/admin/clients', { headers: as(ADMIN_KEY), body: { name, weight: 2 } }));
    expect(made.statusCode).toBe(201);
    expect(made.json).toMatchObject({ name, weight: 2, apiKey: expect.stringMatching(/^sj_/) });
    const { rows } = await db.pool.query(`SELECT api_key_hash FROM clients WHERE name = $1`, [name]);
    expect(rows[0].api_key_hash).not.toContain(made.json.apiKey);
    expect((await api.call(apiEvent('GET', '/jobs', { headers: as(made.json.apiKey) }))).statusCode).toBe(200);
    expectProblem(await api.call(apiEvent('POST', '/admin/clients', { headers: as(ADMIN_KEY), body: { name } })), 409, 'client-exists');
    expectProblem(await api.call(apiEvent('POST', '/admin/clients', { headers: as(key), body: { name: 'sneaky' } })), 403, 'admin-only');
    expect((await api.call(apiEvent('POST', `/admin/clients/${name}/revoke`, { headers: as(ADMIN_KEY) }))).statusCode).toBe(200);
    expectProblem(await api.call(apiEvent('GET', '/jobs', { headers: as(made.json.apiKey) })), 403, 'api-key-revoked');
  });
});
