import fc from 'fast-check';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { createClient } from '../lambda/core/clients';
import { ADMIN_KEY, apiEvent, testApi } from './support/api';
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

describe('hostile input', () => {
  const PROTO_NAMES = ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', '__defineGetter__', 'prototype'];
  /** An object with `name` as an own key, as a parsed gateway event has it. */
  const named = (name: string, value: string): Record<string, string> => JSON.parse(`{${JSON.stringify(name)}:${JSON.stringify(value)}}`);
  const loneSurrogate = fc.constantFrom('\ud800', '\udfff', 'a\ud83d', '\ude00b', 'x\udbff\ud800');
  const day = 24 * 3600_000;
  const impossibleDate = fc.oneof(
    fc.constantFrom('2027-02-30T00:00:00Z', '2027-02-29T12:00:00Z', '2026-04-31T00:00:00Z', '2027-13-01T00:00:00Z', '2027-00-10T00:00:00Z'),
    fc.constantFrom('0001-01-01T00:00:00Z', '1970-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '2027-01-01T24:00:00Z', '2027-01-01T10:60:00Z', '2027-01-01T10:00:60Z', '2027-01-01T10:00:00+24:00'),
    fc.integer({ min: 2, max: 3650 }).map((d) => new Date(Date.now() - d * day).toISOString()),
    fc.integer({ min: 367, max: 3650 }).map((d) => new Date(Date.now() + d * day).toISOString()),
  );
  const encoding = fc.constantFrom('gzip', 'br', 'deflate', 'compress', 'zstd', 'GZIP', 'gzip, identity', 'x-gzip');
  const badPath = fc.constantFrom('//admin/stats', '//stats', '/jobs//', '//jobs', '/./stats', '/jobs/../admin/stats', '/admin/../stats', '/admin//clients', '/uploads/.', '/%2e%2e/admin/stats', 'admin/stats', '');

  it('prototype names in query and header names: 4xx, never 5xx', async () => {
    const name = fc.constantFrom(...PROTO_NAMES);
    const req = fc.oneof(
      // As unknown query fields on routes that check their query.
      fc.record({ name, value: weird, alsoHeader: fc.boolean() }).chain(({ name: n, value, alsoHeader }) =>
        fc.constantFrom(
          apiEvent('GET', '/jobs', { headers: { ...as(key), ...(alsoHeader ? named(n, value) : {}) }, query: named(n, value) }),
          apiEvent('POST', '/uploads', { headers: { ...as(key, { 'content-type': 'text/plain' }), ...(alsoHeader ? named(n, value) : {}) }, body: 'A document.', query: named(n, value) }),
        ),
      ),
      // As header names (and query names) on requests refused for their key: none (401) or a client's on an admin route (403).
      fc.record({ name, value: weird, path: fc.constantFrom('/jobs', '/stats', '/schedules', `/jobs/{id}`, '/admin/stats', '/admin/clients') }).chain(({ name: n, value, path }) =>
        fc.constantFrom(
          apiEvent('GET', path.replace('{id}', jobId), { headers: named(n, value), query: named(n, value) }),
          apiEvent('GET', '/admin/stats', { headers: { ...named(n, value), ...as(key) }, query: named(n, value) }),
        ),
      ),
    );
    await fc.assert(fc.asyncProperty(req, assertRejected), { numRuns: CASES });
  });

  it('lone surrogates in filenames, JSON strings and keys, query values and headers', async () => {
    const req = fc.oneof(
      loneSurrogate.map((s) => apiEvent('POST', '/uploads', { headers: as(key, json), body: `{"content":"ok text","filename":${JSON.stringify(`f${s}.txt`)}}` })),
      loneSurrogate.map((s) => apiEvent('POST', '/uploads', { headers: as(key, json), body: JSON.stringify({ content: `text ${s} more text` }) })),
      loneSurrogate.map((s) => apiEvent('POST', '/uploads', { headers: as(key, json), body: `{${JSON.stringify(s)}:1,"content":"a"}` })),
      loneSurrogate.map((s) => apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: 'A document.', query: { filename: `f${s}` } })),
      loneSurrogate.map((s) => apiEvent('POST', '/schedules', { headers: as(key, json), body: JSON.stringify({ name: 'n', cron: `0 7 * * *${s}` }) })),
      loneSurrogate.map((s) => apiEvent('GET', '/jobs', { headers: as(key, { 'x-trace': s }) })),
      loneSurrogate.map((s) => apiEvent('GET', `/jobs/${s}`, { headers: as(key) })),
    );
    await fc.assert(fc.asyncProperty(req, assertRejected), { numRuns: CASES });
  });

  it('impossible and out-of-range runAt, in JSON and in the query string', async () => {
    const req = fc.record({ runAt: impossibleDate, inQuery: fc.boolean() }).map(({ runAt, inQuery }) =>
      inQuery
        ? apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: 'A document.', query: { runAt } })
        : apiEvent('POST', '/uploads', { headers: as(key, json), body: JSON.stringify({ content: 'ok text', options: { runAt } }) }),
    );
    await fc.assert(fc.asyncProperty(req, assertRejected), { numRuns: CASES });
  });

  it('content encodings, unknown charsets, invalid UTF-8 and duplicate headers', async () => {
    const invalidUtf8 = fc.constantFrom([0xc3, 0x28], [0xa0, 0xa1], [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0x28], [0xff], [0xed, 0xa0, 0x80]).map((b) => Buffer.concat([Buffer.from('Some text '), Buffer.from(b), Buffer.from(' more.')]));
    const req = fc.oneof(
      fc.record({ enc: encoding, type: fc.constantFrom('text/plain', 'application/json', 'application/pdf') }).map(({ enc, type }) =>
        apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': type, 'Content-Encoding': enc }), body: type === 'application/json' ? '{"content":"ok text"}' : 'A document.' }),
      ),
      encoding.map((enc) => apiEvent('POST', '/schedules', { headers: as(key, { ...json, 'content-encoding': enc }), body: '{"name":"n","cron":"0 7 * * *"}' })),
      fc.constantFrom('klingon', 'utf-9', 'x-user-defined-2', 'ebcdic', '""', 'utf-8-please', 'iso-8859-99').map((cs) =>
        apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': `text/plain; charset=${cs}` }), body: 'A document.' }),
      ),
      fc.constantFrom('iso-8859-1', 'utf-16le', 'windows-1252', 'klingon').map((cs) =>
        apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': `application/json; charset=${cs}` }), body: '{"content":"ok text"}' }),
      ),
      fc.record({ bytes: invalidUtf8, type: fc.constantFrom('text/plain', 'text/markdown', 'text/html', 'text/plain; charset=utf-8') }).map(({ bytes, type }) =>
        apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': type }), body: bytes }),
      ),
      invalidUtf8.map((bytes) => apiEvent('POST', '/uploads', { headers: as(key, json), body: Buffer.concat([Buffer.from('{"content":"'), bytes, Buffer.from('"}')]) })),
      fc.constantFrom('x-api-key', 'X-API-KEY', 'content-type', 'idempotency-key', 'content-encoding').map((name) =>
        apiEvent('POST', '/uploads', {
          headers: { 'x-api-key': key, 'content-type': 'text/plain', 'idempotency-key': 'dup-1', 'content-encoding': 'identity' },
          repeatedHeaders: { [name]: [name.toLowerCase() === 'x-api-key' ? key : name.toLowerCase() === 'content-type' ? 'text/plain' : name.toLowerCase() === 'idempotency-key' ? 'dup-1' : 'identity', 'x'] },
          body: 'A document.',
        }),
      ),
      fc.constant(apiEvent('GET', '/admin/stats', { repeatedHeaders: { 'x-api-key': [key, ADMIN_KEY] } })),
      fc.constant(apiEvent('GET', '/jobs', { repeatedHeaders: { 'x-api-key': [key, key] } })),
    );
    await fc.assert(fc.asyncProperty(req, assertRejected), { numRuns: CASES });
  });

  it('paths with empty or dot segments, with a client key, the admin key or none', async () => {
    const req = fc.record({ path: badPath, method: fc.constantFrom('GET', 'POST', 'DELETE'), k: fc.constantFrom(key, ADMIN_KEY, undefined) }).map(({ path, method, k }) =>
      apiEvent(method, path, { headers: k ? { 'x-api-key': k } : {} }),
    );
    await fc.assert(fc.asyncProperty(req, assertRejected), { numRuns: CASES });
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
