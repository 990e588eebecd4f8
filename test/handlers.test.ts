import type { Context } from 'aws-lambda';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '../lambda/core/clients';
import { lambdaContext } from '../lambda/local/http';
import { apiEvent } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/db';

/**
 * The Lambda entry points themselves, as AWS calls them: module-scope config
 * from the environment, the container's pool, a Lambda context.
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
  process.env.DATABASE_URL = db.url;
  process.env.PROCESSOR_FUNCTION_NAME = '';
  process.env.JOB_TIMEOUT_MS = '5000';
  process.env.MAX_RUN_MS = '20000';
});
afterAll(async () => {
  const { closePool } = await import('../lambda/core/db');
  await closePool();
  await db.drop();
  delete process.env.DATABASE_URL;
});

const context = (): Context => lambdaContext('test-fn', 30_000);

it('migrate handler applies the migrations once', async () => {
  const { handler } = await import('../lambda/handlers/migrate');
  const first = await handler({}, context());
  const files = readdirSync(join(__dirname, '..', 'migrations')).filter((f) => f.endsWith('.sql')).sort();
  expect(first.applied).toEqual(files);
  expect((await handler({}, context())).applied).toEqual([]);
});

it('API and processor handlers: an upload is summarized by the next processor invocation', async () => {
  const { apiKey } = await createClient(db.pool, 'handlers');
  const api = (await import('../lambda/handlers/api')).handler;
  const upload = await api(
    apiEvent('POST', '/uploads', {
      headers: { 'x-api-key': apiKey, 'content-type': 'text/plain' },
      body: 'The harbour froze in January. Ships waited outside for a week. When the ice broke, the town celebrated with a fair.',
    }),
    context(),
  );
  expect(upload.statusCode).toBe(202);
  const id = JSON.parse(upload.body).id as string;

  const processor = (await import('../lambda/handlers/processor')).handler;
  const run = await processor({ source: 'aws.events' }, context());
  expect(run).toMatchObject({ claimed: 1, completed: 1, failed: 0 });

  const job = await api(apiEvent('GET', `/jobs/${id}`, { headers: { 'x-api-key': apiKey } }), context());
  const body = JSON.parse(job.body);
  expect(body.status).toBe('completed');
  expect(body.result.summary).toContain('harbour');
  expect(body.result.summarizer).toBe('extractive');
});

it('API handler: bodies of every type arrive base64-encoded (binaryMediaTypes */*) and are decoded with their charset', async () => {
  const { apiKey, client } = await createClient(db.pool, 'handlers-bytes');
  const api = (await import('../lambda/handlers/api')).handler;
  const latin1 = Buffer.from('Les élèves ont déjà mangé. Ça va.', 'latin1');
  const upload = async (contentType: string, body: Buffer) => {
    const event = apiEvent('POST', '/uploads', { headers: { 'x-api-key': apiKey, 'content-type': contentType }, body });
    expect(event.isBase64Encoded).toBe(true);
    return api(event, context());
  };
  const ok = await upload('text/plain; charset=iso-8859-1', latin1);
  expect(ok.statusCode).toBe(202);
  const { rows } = await db.pool.query(`SELECT content, content_type FROM uploads WHERE client_id = $1`, [client.id]);
  expect(rows).toHaveLength(1);
  expect(Buffer.compare(rows[0].content, latin1)).toBe(0);
  expect(rows[0].content_type).toBe('text/plain; charset=windows-1252');
  // The same bytes without their charset are not UTF-8: refused at the door, nothing stored.
  const refused = await upload('text/markdown', latin1);
  expect(refused.statusCode).toBe(400);
  expect(JSON.parse(refused.body).type).toMatch(/invalid-text$/);
  expect((await db.pool.query(`SELECT count(*)::int AS n FROM uploads WHERE client_id = $1`, [client.id])).rows[0].n).toBe(1);
});
