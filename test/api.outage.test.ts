import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Pool } from 'pg';
import { Metric } from '../lambda/core/alarm-rules';
import { createClient } from '../lambda/core/clients';
import { databaseConfig } from '../lambda/core/config';
import { createPool, poolConfig } from '../lambda/core/db';
import { RecordingMetrics } from '../lambda/core/metrics';
import { apiEvent, testApi } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/db';

/**
 * The API through a database outage: a TCP proxy between the API's pool and a
 * real Postgres either forwards, refuses (a database that is down: connections
 * reset), or freezes (a database that stopped answering: bytes go nowhere).
 * Meanwhile every request is a quick 503 problem with Retry-After, counted as
 * DatabaseErrors; afterwards the same handler and pool answer again on their own.
 */

type Mode = 'forward' | 'refuse' | 'freeze';

function databaseProxy(target: URL) {
  let mode: Mode = 'forward';
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (mode === 'refuse') return void client.destroy();
    if (mode === 'freeze') return; // accepted, never answered
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    // Data is forwarded only while the proxy forwards: a frozen link drops it.
    client.on('data', (chunk) => mode === 'forward' && upstream.write(chunk));
    upstream.on('data', (chunk) => mode === 'forward' && client.write(chunk));
  });
  return {
    listen: () => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port))),
    /** The database went away: open connections reset, new ones refused. */
    refuse: () => {
      mode = 'refuse';
      for (const s of sockets) s.destroy();
    },
    /** The database froze: connections stay open and nothing comes back. */
    freeze: () => {
      mode = 'freeze';
    },
    /** Back to normal, for new connections (frozen ones are dropped, as a restarted server would). */
    restore: () => {
      if (mode === 'freeze') for (const s of sockets) s.destroy();
      mode = 'forward';
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const CONNECT_TIMEOUT_MS = 1000;
const QUERY_TIMEOUT_MS = 1500;

let db: TestDatabase;
let proxy: ReturnType<typeof databaseProxy>;
let pool: Pool;
let key: string;

beforeAll(async () => {
  db = await createTestDatabase();
  key = (await createClient(db.pool, 'outage')).apiKey;
  const target = new URL(db.url);
  proxy = databaseProxy(target);
  const port = await proxy.listen();
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${port}`;
  // The production pool settings (lambda/core/db.ts), with short timeouts to keep the test quick.
  pool = createPool(
    await poolConfig(
      databaseConfig({
        DATABASE_URL: viaProxy.toString(),
        DB_POOL_MAX: '2',
        DB_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
        DB_STATEMENT_TIMEOUT_MS: '1000',
        DB_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      }),
    ),
  );
});
afterAll(async () => {
  await pool.end().catch(() => undefined);
  await proxy.close();
  await db.drop();
});

async function expectUnavailable(api: ReturnType<typeof testApi>, event: ReturnType<typeof apiEvent>) {
  const started = Date.now();
  const res = await api.call(event);
  const elapsed = Date.now() - started;
  expect({ status: res.statusCode, retryAfter: res.headers?.['retry-after'], contentType: res.headers?.['content-type'] }).toEqual({
    status: 503,
    retryAfter: '5',
    contentType: 'application/problem+json',
  });
  expect(res.json).toMatchObject({ status: 503, type: 'https://summary-jobs.dev/problems/database-unavailable', detail: expect.stringMatching(/retry/) });
  expect(res.body).not.toMatch(/ECONN|127\.0\.0\.1|timeout exceeded|at /);
  return elapsed;
}

it('answers 503 with Retry-After while the database refuses connections, counts each, and recovers by itself', async () => {
  const flushed: number[] = [];
  const counted = new RecordingMetrics((points) => flushed.push(points.filter((p) => p.name === Metric.DatabaseErrors).length));
  const api = testApi(pool, { metrics: counted });
  expect((await api.call(apiEvent('GET', '/health'))).statusCode).toBe(200);
  expect((await api.call(apiEvent('POST', '/uploads', { headers: { 'x-api-key': key, 'content-type': 'text/plain' }, body: 'Before the outage. It was fine.' }))).statusCode).toBe(202);

  proxy.refuse();
  await expectUnavailable(api, apiEvent('GET', '/health'));
  await expectUnavailable(api, apiEvent('GET', '/jobs', { headers: { 'x-api-key': key } }));
  await expectUnavailable(api, apiEvent('POST', '/uploads', { headers: { 'x-api-key': key, 'content-type': 'text/plain' }, body: 'During the outage. Refused.' }));
  expect(counted.sum(Metric.DatabaseErrors)).toBe(3);
  // Flushed with each error, so the alarm sees it in the minute it happened.
  expect(flushed).toEqual([1, 1, 1]);
  // A bad request is still the client's fault, outage or not, and not counted.
  const bad = await api.call(apiEvent('GET', '//admin/stats', { headers: { 'x-api-key': key } }));
  expect(bad.statusCode).toBe(400);
  expect(counted.sum(Metric.DatabaseErrors)).toBe(3);

  proxy.restore();
  expect((await api.call(apiEvent('GET', '/health'))).statusCode).toBe(200);
  const after = await api.call(apiEvent('POST', '/uploads', { headers: { 'x-api-key': key, 'content-type': 'text/plain' }, body: 'After the outage. Fine again.' }));
  expect(after.statusCode).toBe(202);
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM summary_jobs`);
  expect(rows[0].n).toBe(2);
  expect(counted.sum(Metric.DatabaseErrors)).toBe(3);
});

it('answers 503 within the pool timeouts while the database is frozen, not after a long hang', async () => {
  const metrics = new RecordingMetrics();
  const api = testApi(pool, { metrics });
  expect((await api.call(apiEvent('GET', '/health'))).statusCode).toBe(200);

  proxy.freeze();
  // An open connection waits for an answer until the client-side query timeout...
  const onOpen = await expectUnavailable(api, apiEvent('GET', '/health'));
  // ...and new connections until the connect timeout (both idle clients are now stuck or gone).
  const results = await Promise.all([1, 2, 3].map(() => expectUnavailable(api, apiEvent('GET', '/health'))));
  // Bounded by the configured timeouts (generous slack for a busy machine), not by the 20 s of a frozen server.
  expect(onOpen).toBeLessThan((QUERY_TIMEOUT_MS + CONNECT_TIMEOUT_MS) * 3);
  for (const elapsed of results) expect(elapsed).toBeLessThan((QUERY_TIMEOUT_MS + CONNECT_TIMEOUT_MS) * 3);
  expect(metrics.sum(Metric.DatabaseErrors)).toBe(4);

  proxy.restore();
  expect((await api.call(apiEvent('GET', '/health'))).statusCode).toBe(200);
});

it('answers a statement the database refuses (not an outage) with a 500, not counted as a database error', async () => {
  // A database without the schema: every statement fails with 42P01 (undefined table).
  const bare = await createTestDatabase({ migrate: false });
  try {
    const metrics = new RecordingMetrics();
    const api = testApi(bare.pool, { metrics });
    const res = await api.call(apiEvent('GET', '/jobs', { headers: { 'x-api-key': key } }));
    expect({ status: res.statusCode, type: res.json.type, retryAfter: res.headers?.['retry-after'] }).toEqual({
      status: 500,
      type: 'https://summary-jobs.dev/problems/internal',
      retryAfter: undefined,
    });
    expect(metrics.sum(Metric.DatabaseErrors)).toBe(0);
  } finally {
    await bare.drop();
  }
});
