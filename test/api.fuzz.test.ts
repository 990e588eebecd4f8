import fc from 'fast-check';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { createClient } from '../lambda/core/clients';
import { apiEvent, testApi } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/db';

/**
 * Property: every malformed request is answered with a 4xx problem+json, never
 * a 5xx or a stack trace, and writes nothing. Each generator below produces
 * only requests that must be rejected.
 */

let db: TestDatabase;
let api: ReturnType<typeof testApi>;
let key: string;
let jobId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  api = testApi(db.pool);
  key = (await createClient(db.pool, 'fuzz')).apiKey;
  const ok = await api.call(apiEvent('POST', '/uploads', { headers: { 'x-api-key': key }, body: { content: 'A real document.' } }));
  jobId = ok.json.id;
});
afterAll(async () => {
  await db.drop();
});

async function counts(): Promise<string> {
  const { rows } = await db.pool.query(
    `SELECT (SELECT count(*) FROM summary_jobs) AS j, (SELECT count(*) FROM uploads) AS u, (SELECT count(*) FROM recurring_jobs) AS r,
            (SELECT count(*) FROM clients) AS c, (SELECT count(*) FROM rate_limits) AS l`,
  );
  return JSON.stringify(rows[0]);
}

async function assertRejected(event: APIGatewayProxyEvent): Promise<void> {
  const before = await counts();
  const res = await api.handler(event);
  const after = await counts();
  const body = res.body ? JSON.parse(res.body) : {};
  const ok =
    res.statusCode >= 400 &&
    res.statusCode < 500 &&
    res.headers?.['content-type'] === 'application/problem+json' &&
    body.status === res.statusCode &&
    typeof body.type === 'string' &&
    typeof body.title === 'string' &&
    typeof body.detail === 'string' &&
    !/\n\s+at |Error: |node:internal|\.ts:\d+/.test(res.body) &&
    before === after;
  if (!ok) {
    throw new Error(`not a clean rejection: ${res.statusCode} ${res.body.slice(0, 300)} (db ${before} -> ${after}) for ${JSON.stringify(event).slice(0, 600)}`);
  }
}

const weird = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('\u0000', 'a\u0000b', '\ud800', '%00', '../../etc', '<script>', "'; DROP TABLE clients; --", 'x'.repeat(10_000)),
);
const notInt = fc.oneof(fc.double({ noInteger: true }), fc.constantFrom(1e9, -1e9, 2 ** 53, Number.NaN, '5', null, true, [], {}), fc.string());
const as = (k: string, extra: Record<string, string> = {}) => ({ 'x-api-key': k, ...extra });
const json = { 'content-type': 'application/json' };

const CASES = 300;

describe('malformed requests', () => {
  it('POST /uploads with broken JSON bodies', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }).filter((s) => {
            try {
              const v = JSON.parse(s);
              return typeof v !== 'object' || v === null || Array.isArray(v);
            } catch {
              return true;
            }
          }),
          fc.constantFrom('{', '{"content":', '[]', 'null', '"text"', '{"content": "a",}', '\u0000'),
        ),
        async (body) => assertRejected(apiEvent('POST', '/uploads', { headers: as(key, json), body })),
      ),
      { numRuns: CASES },
    );
  });

  it('POST /uploads with wrong types, unknown fields and out-of-range options', async () => {
    const badBody = fc.oneof(
      fc.record({ content: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string())) }),
      fc.record({ content: fc.constant('ok text'), [`x${Math.random().toString(36).slice(2, 6)}`]: weird }),
      fc.record({ content: fc.constant('ok text'), unknownField: weird }),
      fc.record({ content: fc.constant('ok text'), options: fc.record({ priority: notInt }) }),
      fc.record({ content: fc.constant('ok text'), options: fc.record({ priority: fc.integer({ min: 101, max: 2 ** 31 }) }) }),
      fc.record({ content: fc.constant('ok text'), options: fc.record({ maxSentences: fc.oneof(notInt, fc.integer({ min: 51 }), fc.integer({ max: 0 })) }) }),
      fc.record({ content: fc.constant('ok text'), options: fc.record({ maxAttempts: fc.oneof(notInt, fc.integer({ min: 21 }), fc.integer({ max: 0 })) }) }),
      fc.record({ content: fc.constant('ok text'), options: fc.record({ runAt: fc.oneof(weird, fc.integer(), fc.constantFrom('2026-13-45T99:99:99Z', '9999-01-01T00:00:00Z', '2026-01-01')) }) }),
      fc.record({ content: fc.constant('ok text'), options: fc.record({ dependsOn: fc.oneof(weird, fc.array(weird, { minLength: 1 }), fc.constant(Array(501).fill('0190a0a0-0000-7000-8000-000000000000'))) }) }),
      fc.record({ content: fc.constant('ok text'), options: fc.record({ dependsOn: fc.array(fc.uuid({ version: 7 }), { minLength: 1, maxLength: 3 }) }) }),
      fc.record({ content: fc.constant('ok text'), options: fc.record({ colour: weird }) }),
      fc.record({ content: fc.constant('ok text'), options: fc.oneof(weird, fc.array(fc.integer())) }),
      fc.record({ content: fc.constant('ok text'), filename: fc.oneof(fc.integer(), fc.constant('x'.repeat(256)), fc.constant(''), fc.constant('a\u0000b'), fc.constant('line\nbreak')) }),
      fc.record({ content: fc.constant('ok text'), contentType: fc.oneof(weird, fc.constantFrom('image/png', 'application/json', 'TEXT/PLAIN ')) }),
      fc.record({ contentBase64: fc.oneof(fc.constantFrom('not base64!', 'abc', '====', 'YQ=x'), fc.integer()) }),
      fc.record({ content: fc.constant('a'), contentBase64: fc.constant('YQ==') }),
      fc.record({ content: fc.constantFrom('', '   ', '\n\t ') }),
      fc.constant({}),
    );
    await fc.assert(
      fc.asyncProperty(badBody, async (body) => assertRejected(apiEvent('POST', '/uploads', { headers: as(key, json), body: JSON.stringify(body) }))),
      { numRuns: CASES },
    );
  });

  it('POST /uploads with bad headers, content types, encodings, query strings and sizes', async () => {
    const badRequest = fc.oneof(
      fc.record({ type: fc.oneof(weird, fc.constantFrom('image/png', 'text/csv', 'multipart/form-data', '')), body: fc.string({ minLength: 1 }) }).map(({ type, body }) =>
        apiEvent('POST', '/uploads', { headers: as(key, type ? { 'content-type': type } : {}), body: body.trim() ? body : 'x' }),
      ),
      fc.constantFrom('text/plain', 'text/html').map((t) => apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': t }), body: 'y'.repeat(70 * 1024) })),
      fc.constant(apiEvent('POST', '/uploads', { headers: as(key, json), body: JSON.stringify({ content: 'z'.repeat(70 * 1024) }) })),
      fc.record({ name: fc.constantFrom('priority', 'maxSentences', 'maxAttempts', 'runAt', 'dependsOn', 'filename', 'colour'), value: weird }).map(({ name, value }) =>
        apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: 'A document.', query: { [name]: name === 'filename' ? `${value}\u0000` : `${value}!` } }),
      ),
      fc.constant(apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: 'A document.', query: { filename: 'x'.repeat(300) } })),
      fc.oneof(weird, fc.constant(''), fc.constant('k'.repeat(256)), fc.constant('with space'), fc.constant('tab\there')).filter((k) => !/^[\x21-\x7e]{1,255}$/.test(k)).map((idem) =>
        apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain', 'Idempotency-Key': idem }), body: 'A document.' }),
      ),
      fc.constant(apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: '' })),
      fc.constant(apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'application/pdf' }), body: '' })),
      fc.constant(apiEvent('POST', '/uploads', { headers: as(key, json), body: '{"content":"a"}', query: { priority: '1' } })),
    );
    await fc.assert(fc.asyncProperty(badRequest, assertRejected), { numRuns: CASES });
  });

  it('bad keys, ids, cursors, paths and methods everywhere', async () => {
    const badKey = fc.oneof(fc.constant(undefined), weird, fc.constant('sj_' + 'A'.repeat(43)), fc.constant('x'.repeat(5000)));
    const badRoute = fc.oneof(
      badKey.map((k) => apiEvent('GET', '/jobs', { headers: k === undefined ? {} : { 'x-api-key': k } })),
      badKey.map((k) => apiEvent('POST', `/jobs/${jobId}/retry`, { headers: k === undefined ? {} : { 'x-api-key': k } })),
      fc.oneof(weird, fc.constant(key)).map((k) => apiEvent('GET', '/admin/stats', { headers: { 'x-api-key': k } })),
      fc.oneof(weird, fc.constant('123'), fc.constant('%E0%A4%A'), fc.uuid().map((u) => `${u}x`)).filter((s) => s.length > 0 && !s.includes('/')).map((id) =>
        apiEvent('GET', `/jobs/${id}`, { headers: as(key) }),
      ),
      fc.uuid({ version: 4 }).map((id) => apiEvent('POST', `/jobs/${id}/cancel`, { headers: as(key) })),
      fc.record({
        cursor: fc.oneof(weird, fc.constant(Buffer.from('j:not-a-uuid').toString('base64url'))),
      }).map((query) => apiEvent('GET', '/jobs', { headers: as(key), query })),
      fc.oneof(notInt.map(String), fc.constantFrom('0', '101', '-1', '1e3', '')).filter((l) => !(/^\d{1,6}$/.test(l) && +l >= 1 && +l <= 100)).map((limit) => apiEvent('GET', '/jobs', { headers: as(key), query: { limit } })),
      weird.filter((s) => !['queued', 'running', 'completed', 'failed', 'cancelled'].includes(s)).map((status) => apiEvent('GET', '/jobs', { headers: as(key), query: { status } })),
      fc.record({ path: fc.constantFrom('/nope', '/jobs/a/b/c', '/admin', '/uploads/x', '/'), method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH') }).map(({ path, method }) =>
        apiEvent(method, path, { headers: as(key) }),
      ),
      fc.constantFrom('PUT', 'DELETE', 'PATCH', 'HEAD').map((m) => apiEvent(m, '/uploads', { headers: as(key) })),
      fc.oneof(weird, fc.constant('{"name":"x","cron":"61 * * * *"}'), fc.constant('{"name":"bad name!","cron":"* * * * *"}'), fc.constant('{"name":"n","cron":"* * * * *","timezone":"Mars/Base"}')).map((body) =>
        apiEvent('POST', '/schedules', { headers: as(key, json), body }),
      ),
    );
    await fc.assert(fc.asyncProperty(badRoute, assertRejected), { numRuns: CASES });
  });
});

describe('the rejection check itself', () => {
  it('fails for a request that is accepted and writes rows', async () => {
    await expect(assertRejected(apiEvent('POST', '/uploads', { headers: as(key, json), body: JSON.stringify({ content: 'Accepted.' }) }))).rejects.toThrow(
      /not a clean rejection: 202/,
    );
  });

  it('fails for a 5xx', async () => {
    const broken = testApi(db.pool, {
      pool: async () => {
        throw new Error('down');
      },
    });
    const res = await broken.handler(apiEvent('GET', '/health'));
    expect(res.statusCode).toBe(500);
  });
});
