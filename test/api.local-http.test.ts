import type { APIGatewayProxyEvent } from 'aws-lambda';
import { connect } from 'node:net';
import { createClient } from '../lambda/core/clients';
import { startHttpServer, type RunningHttpServer } from '../lambda/local/http';
import { ADMIN_KEY, testApi } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/db';

/**
 * The local stand-in for API Gateway, spoken to over raw HTTP/1.1 (so that a
 * request can carry what a normal client library would tidy away: repeated
 * headers, `//` paths, prototype names): it builds the event as the gateway
 * does, with every body base64-encoded, and the handler refuses what it must.
 */

let db: TestDatabase;
let server: RunningHttpServer;
let key: string;
let clientId: string;
const events: APIGatewayProxyEvent[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  const made = await createClient(db.pool, 'local-http');
  key = made.apiKey;
  clientId = made.client.id;
  const { handler } = testApi(db.pool);
  server = await startHttpServer(
    async (event, context) => {
      events.push(event);
      return handler(event, context);
    },
    { port: 0 },
  );
});
afterAll(async () => {
  await server.close();
  await db.drop();
});

interface RawResponse {
  status: number;
  headers: string[];
  body: string;
}

/** Sends one request exactly as written and reads the whole response (Connection: close). */
function raw(method: string, target: string, headers: [string, string][], body: Buffer = Buffer.alloc(0)): Promise<RawResponse> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      resolve({ status: Number(statusLine.split(' ')[1]), headers: headerLines, body: rest.join('\r\n\r\n') });
    });
    const lines = [`${method} ${target} HTTP/1.1`, 'Host: localhost', 'Connection: close', ...headers.map(([k, v]) => `${k}: ${v}`)];
    if (body.length > 0 || method === 'POST') lines.push(`Content-Length: ${body.length}`);
    socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]));
  });
}

const problemType = (res: RawResponse) => (JSON.parse(res.body) as { type: string }).type.replace(/^.*\/problems\//, '');
const uploadsOf = async () => (await db.pool.query(`SELECT count(*)::int AS n FROM uploads WHERE client_id = $1`, [clientId])).rows[0].n as number;

it('builds the event as API Gateway does: every body base64, all header values, query names as data', async () => {
  events.length = 0;
  const body = Buffer.from('Plain text. Sent as bytes.', 'utf8');
  const res = await raw('POST', '/uploads?filename=a.txt', [['x-api-key', key], ['Content-Type', 'text/plain'], ['X-Note', 'one'], ['x-note', 'two']], body);
  expect(res.status).toBe(202);
  const event = events[0]!;
  expect(event.isBase64Encoded).toBe(true);
  expect(Buffer.from(event.body!, 'base64').equals(body)).toBe(true);
  expect(event.path).toBe('/uploads');
  expect(event.queryStringParameters).toEqual({ filename: 'a.txt' });
  expect(event.multiValueHeaders['X-Note']).toEqual(['one']);
  expect(event.multiValueHeaders['x-note']).toEqual(['two']);
  expect(event.headers['Content-Type']).toBe('text/plain');
});

it('answers prototype names in the query and headers like any other name, never 502', async () => {
  for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
    const health = await raw('GET', `/health?${name}=x&${name}=y`, [[name, 'x'], [name, 'y']]);
    expect({ name, status: health.status }).toEqual({ name, status: 200 });
    const jobs = await raw('GET', `/jobs?${name}=x`, [['x-api-key', key], [name, 'x']]);
    expect({ name, status: jobs.status, type: problemType(jobs) }).toEqual({ name, status: 400, type: 'unknown-field' });
  }
});

it('refuses a second x-api-key (400), whichever wins at the gateway', async () => {
  for (const second of [key, ADMIN_KEY, 'sj_other']) {
    const res = await raw('GET', '/jobs', [['x-api-key', key], ['X-API-Key', second]]);
    expect({ status: res.status, type: problemType(res) }).toEqual({ status: 400, type: 'duplicate-header' });
  }
});

it('never serves //admin/stats (or a dot-segment path) as another route', async () => {
  for (const target of ['//admin/stats', '//stats', '/jobs/../admin/stats', '/./stats', '/admin//stats']) {
    for (const k of [key, ADMIN_KEY]) {
      const res = await raw('GET', target, [['x-api-key', k]]);
      expect({ target, status: res.status, type: problemType(res) }).toEqual({ target, status: 400, type: 'invalid-path' });
    }
  }
});

it('reaches the charset handling: ISO-8859-1 stored as sent, invalid UTF-8 and unknown charsets refused, gzip refused', async () => {
  const before = await uploadsOf();
  const latin1 = Buffer.from('Déjà vu. Un café.', 'latin1');
  const ok = await raw('POST', '/uploads', [['x-api-key', key], ['Content-Type', 'text/plain; charset=iso-8859-1']], latin1);
  expect(ok.status).toBe(202);
  const { rows } = await db.pool.query(`SELECT content, content_type FROM uploads WHERE id = $1`, [JSON.parse(ok.body).uploadId]);
  expect(Buffer.compare(rows[0].content, latin1)).toBe(0);
  expect(rows[0].content_type).toBe('text/plain; charset=windows-1252');

  const invalid = await raw('POST', '/uploads', [['x-api-key', key], ['Content-Type', 'text/plain']], latin1);
  expect({ status: invalid.status, type: problemType(invalid) }).toEqual({ status: 400, type: 'invalid-text' });
  const unknown = await raw('POST', '/uploads', [['x-api-key', key], ['Content-Type', 'text/plain; charset=x-unknown']], latin1);
  expect({ status: unknown.status, type: problemType(unknown) }).toEqual({ status: 415, type: 'unsupported-charset' });
  const gzip = await raw('POST', '/uploads', [['x-api-key', key], ['Content-Type', 'text/plain'], ['Content-Encoding', 'gzip']], Buffer.from([0x1f, 0x8b, 8, 0, 0, 0]));
  expect({ status: gzip.status, type: problemType(gzip) }).toEqual({ status: 415, type: 'unsupported-content-encoding' });
  expect(await uploadsOf()).toBe(before + 1);
});
