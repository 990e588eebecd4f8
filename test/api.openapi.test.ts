import type { APIGatewayProxyEvent } from 'aws-lambda';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dashboardRoutes } from '../lambda/api/dashboard';
import { presentJob } from '../lambda/api/present';
import { ROUTES, type Route } from '../lambda/api/routes';
import { createClient, revokeClient } from '../lambda/core/clients';
import { apiConfig, processorConfig } from '../lambda/core/config';
import { createPool } from '../lambda/core/db';
import { logger } from '../lambda/core/logger';
import { RecordingMetrics } from '../lambda/core/metrics';
import { runProcessor } from '../lambda/core/processor';
import { claimJobs, failJobs, type Job } from '../lambda/core/queue';
import { createSummarizer } from '../lambda/core/summarize';
import { jobWork } from '../lambda/core/work';
import { ADMIN_KEY, apiEvent, testApi } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/db';
import { fakeInvocation } from './support/processor';

/**
 * openapi.json and the handler describe the same API: the same (path, method)
 * pairs as the route table, the same authentication per route, and real
 * responses from a real database that validate against the documented schemas.
 */

type Schema = Record<string, any>;
const doc = JSON.parse(readFileSync(join(__dirname, '..', 'openapi.json'), 'utf8')) as Schema;

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** What the Lambda serves: the route table and the dashboard's routes (lambda/handlers/api.ts). */
const SERVED: Route[] = [...ROUTES, ...dashboardRoutes];
const keyOf = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

const documented = new Map<string, Schema>(
  Object.entries(doc.paths as Record<string, Schema>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([k]) => HTTP_METHODS.includes(k))
      .map(([method, op]) => [keyOf(method, path), op] as [string, Schema]),
  ),
);

function operation(method: string, path: string): Schema {
  const op = documented.get(keyOf(method, path));
  if (!op) throw new Error(`${keyOf(method, path)} is not in openapi.json`);
  return op;
}

/** Follows a local $ref ("#/components/..."). */
function deref(node: Schema): Schema {
  if (typeof node?.$ref !== 'string') return node;
  const target = (node.$ref as string)
    .replace(/^#\//, '')
    .split('/')
    .reduce((at: any, part) => at?.[part], doc);
  if (target === undefined) throw new Error(`unresolved $ref ${node.$ref}`);
  return deref(target);
}

// --- a JSON Schema subset validator -------------------------------------------------
//
// type, required, properties, enum, nullable, items, additionalProperties: false,
// format uuid / date-time / uri, minimum / maximum, minLength / maxLength / pattern,
// maxItems, and $ref. Any other assertion keyword is an error, so the document
// cannot quietly rely on something this check does not enforce.

const ANNOTATIONS = new Set(['description', 'example', 'default', 'title']);
const SUPPORTED = new Set([
  '$ref', 'type', 'nullable', 'enum', 'required', 'properties', 'additionalProperties', 'items', 'format',
  'minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'maxItems',
]);
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function validate(value: unknown, raw: Schema, path = '$'): string[] {
  const schema = deref(raw);
  const unsupported = Object.keys(schema).filter((k) => !SUPPORTED.has(k) && !ANNOTATIONS.has(k));
  if (unsupported.length > 0) return [`${path}: the validator does not support ${unsupported.join(', ')}`];
  if (value === null) return schema.nullable === true ? [] : [`${path}: null is not allowed`];
  const errors: string[] = [];
  const actual = typeOf(value);
  if (schema.type !== undefined) {
    const ok = schema.type === actual || (schema.type === 'number' && actual === 'integer');
    if (!ok) return [`${path}: expected ${schema.type}, got ${actual}`];
  }
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);

  if (actual === 'object') {
    const obj = value as Record<string, unknown>;
    for (const k of (schema.required ?? []) as string[]) if (!(k in obj)) errors.push(`${path}.${k}: required`);
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) errors.push(...validate(v, props[k], `${path}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${path}.${k}: not allowed (additionalProperties: false)`);
      else if (typeof schema.additionalProperties === 'object') errors.push(...validate(v, schema.additionalProperties, `${path}.${k}`));
    }
  }
  if (actual === 'array') {
    const arr = value as unknown[];
    if (schema.maxItems !== undefined && arr.length > schema.maxItems) errors.push(`${path}: more than ${schema.maxItems} items`);
    if (schema.items) arr.forEach((v, i) => errors.push(...validate(v, schema.items, `${path}[${i}]`)));
  }
  if (actual === 'integer' || actual === 'number') {
    const n = value as number;
    if (schema.minimum !== undefined && n < schema.minimum) errors.push(`${path}: ${n} < minimum ${schema.minimum}`);
    if (schema.maximum !== undefined && n > schema.maximum) errors.push(`${path}: ${n} > maximum ${schema.maximum}`);
  }
  if (actual === 'string') {
    const s = value as string;
    if (schema.minLength !== undefined && s.length < schema.minLength) errors.push(`${path}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && s.length > schema.maxLength) errors.push(`${path}: longer than ${schema.maxLength}`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(s)) errors.push(`${path}: does not match ${schema.pattern}`);
    if (schema.format === 'uuid' && !UUID_RE.test(s)) errors.push(`${path}: ${JSON.stringify(s)} is not a uuid`);
    if (schema.format === 'date-time' && (!DATE_TIME_RE.test(s) || Number.isNaN(Date.parse(s)))) errors.push(`${path}: ${JSON.stringify(s)} is not an RFC 3339 date-time`);
    if (schema.format === 'uri' && !/^[a-z][a-z0-9+.-]*:\S+$/i.test(s)) errors.push(`${path}: ${JSON.stringify(s)} is not a URI`);
  }
  return errors;
}

// --- the document against the route table --------------------------------------------

describe('openapi.json and the route table', () => {
  it('is an OpenAPI 3.0.3 document whose $refs all resolve', () => {
    expect(doc.openapi).toBe('3.0.3');
    const refs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) (k === '$ref' ? refs.push(v as string) : walk(v));
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(() => deref({ $ref: ref })).not.toThrow();
  });

  it('documents every route in ROUTES, and every documented operation is a route the handler serves', () => {
    const served = SERVED.map((r) => keyOf(r.method, r.path)).sort();
    expect([...documented.keys()].sort()).toEqual(served);
    for (const r of ROUTES) expect(documented.has(keyOf(r.method, r.path))).toBe(true);
  });

  it('keeps path items to operations and a description', () => {
    for (const [path, item] of Object.entries(doc.paths as Record<string, Schema>)) {
      expect({ path, extra: Object.keys(item).filter((k) => !HTTP_METHODS.includes(k) && k !== 'description') }).toEqual({ path, extra: [] });
    }
  });

  it('declares the two x-api-key schemes and no global security', () => {
    const { ApiKey, AdminKey } = doc.components.securitySchemes;
    expect(ApiKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-api-key' });
    expect(AdminKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-api-key' });
    expect(AdminKey.description).toMatch(/admin/i);
    expect(doc.security).toBeUndefined();
  });

  it.each(SERVED.map((r) => [keyOf(r.method, r.path), r] as const))('%s: documented security matches the route\'s auth', (_, route) => {
    const op = operation(route.method, route.path);
    expect(op.security).toBeDefined();
    const schemes = (op.security as Schema[]).flatMap((s) => Object.keys(s));
    const expected = { none: [], client: ['ApiKey'], admin: ['AdminKey'] }[route.auth];
    expect(schemes).toEqual(expected);
    expect(route.auth === 'admin').toBe(route.path.startsWith('/admin/'));
    const codes = Object.keys(op.responses);
    if (route.auth === 'none') {
      expect(codes).not.toContain('401');
      expect(codes).not.toContain('403');
    } else {
      expect(codes).toEqual(expect.arrayContaining(['401', '403']));
    }
  });

  it.each(SERVED.map((r) => [keyOf(r.method, r.path), r] as const))('%s: path parameters, problem responses and a 500', (_, route) => {
    const op = operation(route.method, route.path);
    const placeholders = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    const params = ((op.parameters ?? []) as Schema[]).map(deref).filter((p) => p.in === 'path');
    expect(params.map((p) => p.name).sort()).toEqual([...placeholders].sort());
    for (const p of params) expect(p.required).toBe(true);
    // A path parameter that does not percent-decode is a 400 on every parametrised route.
    if (placeholders.length > 0) expect(Object.keys(op.responses)).toContain('400');
    expect(Object.keys(op.responses)).toContain('500');
    for (const [code, response] of Object.entries(op.responses as Record<string, Schema>)) {
      if (Number(code) < 400) continue;
      expect({ code, content: Object.keys(deref(response).content ?? {}) }).toEqual({ code, content: ['application/problem+json'] });
      expect(deref(deref(response).content['application/problem+json'].schema)).toBe(doc.components.schemas.Problem);
    }
  });

  it('describes the POST /uploads request: JSON with its options, raw documents with query options, and Idempotency-Key', () => {
    const op = operation('POST', '/uploads');
    expect(Object.keys(op.requestBody.content).sort()).toEqual(['application/json', 'application/pdf', 'text/html', 'text/markdown', 'text/plain']);
    const body = deref(op.requestBody.content['application/json'].schema);
    expect(body.additionalProperties).toBe(false);
    expect(Object.keys(body.properties).sort()).toEqual(['content', 'contentBase64', 'contentType', 'filename', 'options']);
    expect(body.properties.contentType.enum).toEqual(['text/plain', 'text/markdown', 'text/html', 'application/pdf']);
    const options = deref(body.properties.options);
    expect(options.additionalProperties).toBe(false);
    expect(options.properties).toMatchObject({
      priority: { type: 'integer', minimum: -100, maximum: 100 },
      runAt: { type: 'string', format: 'date-time' },
      maxSentences: { type: 'integer', minimum: 1, maximum: 50 },
      maxAttempts: { type: 'integer', minimum: 1, maximum: 20 },
      dependsOn: { type: 'array', maxItems: 500, items: { type: 'string', format: 'uuid' } },
    });
    const params = (op.parameters as Schema[]).map(deref);
    expect(params.filter((p) => p.in === 'query').map((p) => p.name).sort()).toEqual(['dependsOn', 'filename', 'maxAttempts', 'maxSentences', 'priority', 'runAt']);
    expect(params.find((p) => p.in === 'header')).toMatchObject({ name: 'Idempotency-Key', required: false });
  });

  it('has a Job schema with exactly the fields presentJob writes, optional only where presentJob may leave one out', () => {
    const t = new Date('2026-01-01T00:00:00Z');
    const job: Job = {
      id: '01a2cafe-0000-7000-8000-000000000001', clientId: '01a2cafe-0000-7000-8000-000000000002', jobType: 'summarize',
      uploadId: '01a2cafe-0000-7000-8000-000000000003', payload: { filename: 'a.txt', contentType: 'text/plain' }, status: 'queued',
      priority: 0, runAt: t, attempts: 1, maxAttempts: 5, leaseOwner: null, leaseExpiresAt: null, heartbeatAt: null, lastError: 'boom',
      result: null, progressPercent: 10, progressMessage: 'loaded', idempotencyKey: 'k', requestHash: 'h', pendingDependencies: 2,
      attemptErrors: [{ at: t.toISOString(), attempt: 1, error: 'boom', retryable: true, worker: 'host:req', clientCaused: false }], snoozes: 0,
      createdAt: t, updatedAt: t, startedAt: t, finishedAt: null,
    };
    const schema = doc.components.schemas.Job;
    const everything = presentJob(job);
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(everything).sort());
    const fewest = presentJob({ ...job, attempts: 0, pendingDependencies: 0, status: 'completed', result: { summary: 's' } });
    expect([...schema.required].sort()).toEqual(Object.keys(fewest).sort());
    expect(validate(everything, { $ref: '#/components/schemas/Job' })).toEqual([]);
    expect(validate(fewest, { $ref: '#/components/schemas/Job' })).toEqual([]);
    expect(deref(schema.properties.status).enum).toEqual(['queued', 'running', 'completed', 'failed', 'cancelled']);
    expect(doc.components.schemas.AdminJob.properties).toEqual({ ...schema.properties, clientId: expect.objectContaining({ format: 'uuid' }) });
  });
});

describe('the subset validator', () => {
  const job = { $ref: '#/components/schemas/Job' };
  it('accepts a problem and rejects what does not match', () => {
    expect(validate({ type: 'https://x/p', title: 't', status: 400, detail: 'd' }, { $ref: '#/components/schemas/Problem' })).toEqual([]);
    expect(validate({ id: 'x' }, job).length).toBeGreaterThan(5);
    expect(validate({ items: [], nextCursor: null, extra: 1 }, { $ref: '#/components/schemas/JobList' })).toEqual(['$.extra: not allowed (additionalProperties: false)']);
    expect(validate({ items: [{}] }, { $ref: '#/components/schemas/JobList' })).toEqual(expect.arrayContaining(['$.nextCursor: required', '$.items[0].id: required']));
    expect(validate('paused', { $ref: '#/components/schemas/JobStatus' })).toHaveLength(1);
    expect(validate(null, { type: 'string' })).toEqual(['$: null is not allowed']);
    expect(validate(null, { type: 'string', nullable: true })).toEqual([]);
    expect(validate('not-a-uuid', { type: 'string', format: 'uuid' })).toHaveLength(1);
    expect(validate('2026-01-01', { type: 'string', format: 'date-time' })).toHaveLength(1);
    expect(validate('2026-01-01T00:00:00.000Z', { type: 'string', format: 'date-time' })).toEqual([]);
    expect(validate(1.5, { type: 'integer' })).toHaveLength(1);
    expect(validate([1, 'a'], { type: 'array', items: { type: 'integer' } })).toEqual(['$[1]: expected integer, got string']);
    expect(validate({}, { type: 'object', oneOf: [] })).toEqual(['$: the validator does not support oneOf']);
  });
});

// --- real responses against the document ----------------------------------------------

describe('real responses match the documented schemas', () => {
  let db: TestDatabase;
  let api: ReturnType<typeof testApi>;
  let key: string;
  const checked = new Set<string>();

  beforeAll(async () => {
    db = await createTestDatabase();
    // As lambda/handlers/api.ts wires it: the route table and the dashboard's routes.
    api = testApi(db.pool, { extraRoutes: dashboardRoutes });
    key = (await createClient(db.pool, 'docs')).apiKey;
  });
  const ownDatabases: TestDatabase[] = [];
  afterAll(async () => {
    await Promise.all([db, ...ownDatabases].map((d) => d.drop()));
  });

  const as = (k: string, extra: Record<string, string> = {}) => ({ 'x-api-key': k, ...extra });
  const admin = (extra: Record<string, string> = {}) => as(ADMIN_KEY, extra);

  /** Calls the handler and checks the answer against the operation's documented response for that status. */
  async function call(route: string, event: APIGatewayProxyEvent, expectedStatus: number, via = api) {
    const raw = await via.handler(event);
    const isJson = /json/.test(String(raw.headers?.['content-type'] ?? ''));
    const res = { ...raw, json: isJson ? JSON.parse(raw.body) : undefined };
    const op = operation(event.httpMethod, route);
    expect({ route, status: res.statusCode, body: res.statusCode === expectedStatus ? undefined : res.body }).toEqual({ route, status: expectedStatus, body: undefined });
    const response = op.responses[String(res.statusCode)];
    expect({ route, status: res.statusCode, documented: Boolean(response) }).toEqual({ route, status: res.statusCode, documented: true });
    const documentedResponse = deref(response);
    const contentType = String(res.headers?.['content-type'] ?? '').split(';')[0]!.trim();
    if (documentedResponse.content === undefined) {
      expect(res.body).toBe('');
    } else {
      const media = documentedResponse.content[contentType];
      expect({ route, status: res.statusCode, contentType, documented: Boolean(media) }).toEqual({ route, status: res.statusCode, contentType, documented: true });
      if (contentType.endsWith('json')) expect({ route, errors: validate(res.json, media.schema) }).toEqual({ route, errors: [] });
      else expect(validate(res.body, media.schema)).toEqual([]);
    }
    for (const name of Object.keys(documentedResponse.headers ?? {})) {
      const value = res.headers?.[name.toLowerCase()];
      if (value !== undefined) expect(validate(value, deref(documentedResponse.headers[name]).schema)).toEqual([]);
    }
    if (contentType === 'application/problem+json') expect(res.json.status).toBe(res.statusCode);
    checked.add(`${keyOf(event.httpMethod, route)} ${res.statusCode}`);
    return res;
  }

  it('uploads: 202 (JSON and raw), and its documented 4xx problems', async () => {
    const json = await call('/uploads', apiEvent('POST', '/uploads', { headers: as(key), body: { content: 'Docs are good. Docs help people.', filename: 'd.txt', options: { priority: 3, maxSentences: 1 } } }), 202);
    expect(json.headers!.location).toBe(`/jobs/${json.json.id}`);
    const raw = await call(
      '/uploads',
      apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/markdown; charset=utf-8', 'Idempotency-Key': 'docs-1' }), body: '# Notes\n\nSome notes.', query: { filename: 'n.md', priority: '-2', maxAttempts: '3' } }),
      202,
    );
    const replay = await call(
      '/uploads',
      apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/markdown; charset=utf-8', 'Idempotency-Key': 'docs-1' }), body: '# Notes\n\nSome notes.', query: { filename: 'n.md', priority: '-2', maxAttempts: '3' } }),
      202,
    );
    expect(replay.json.id).toBe(raw.json.id);
    expect(replay.headers!['idempotent-replayed']).toBe('true');

    const headers = as(key, { 'content-type': 'application/json' });
    await call('/uploads', apiEvent('POST', '/uploads', { headers, body: '{"content": ' }), 400);
    await call('/uploads', apiEvent('POST', '/uploads', { headers, body: { content: 'x', colour: 'red' } }), 400);
    await call('/uploads', apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: 'y'.repeat(64 * 1024 + 1) }), 413);
    await call('/uploads', apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'image/gif' }), body: 'GIF89a' }), 415);
    await call('/uploads', apiEvent('POST', '/uploads', { headers, body: { content: 'x', options: { dependsOn: ['01a2cafe-0000-7000-8000-00000000abcd'] } } }), 422);
    await call('/uploads', apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/markdown', 'Idempotency-Key': 'docs-1' }), body: 'Another document.' }), 422);
  });

  it('authentication: 401 missing or unknown key, 403 revoked key or client key on an admin route, 401 admin route without a key', async () => {
    const missing = await call('/jobs', apiEvent('GET', '/jobs'), 401);
    expect(missing.json.type).toMatch(/missing-api-key$/);
    expect(missing.headers!['www-authenticate']).toBe('ApiKey header="x-api-key"');
    expect((await call('/jobs', apiEvent('GET', '/jobs', { headers: as('sj_not-a-key') }), 401)).json.type).toMatch(/invalid-api-key$/);
    const { apiKey: leaver } = await createClient(db.pool, 'docs-leaver');
    await revokeClient(db.pool, 'docs-leaver');
    expect((await call('/jobs', apiEvent('GET', '/jobs', { headers: as(leaver) }), 403)).json.type).toMatch(/api-key-revoked$/);
    expect((await call('/admin/stats', apiEvent('GET', '/admin/stats', { headers: as(key) }), 403)).json.type).toMatch(/admin-only$/);
    expect((await call('/admin/stats', apiEvent('GET', '/admin/stats'), 401)).json.type).toMatch(/missing-api-key$/);
  });

  it('jobs through their life: queued, waiting for a retry, completed, failed, waiting for dependencies; lists; changes', async () => {
    // A database of its own: the processor and the claim below take whatever is runnable.
    const own = await createTestDatabase();
    ownDatabases.push(own);
    const ownApi = testApi(own.pool, { extraRoutes: dashboardRoutes });
    const ownKey = (await createClient(own.pool, 'life')).apiKey;
    const ownOtherKey = (await createClient(own.pool, 'life-other')).apiKey;
    const callOwn = (route: string, event: APIGatewayProxyEvent, status: number) => call(route, event, status, ownApi);
    const upload = async (body: object, headers: Record<string, string> = {}) =>
      (await callOwn('/uploads', apiEvent('POST', '/uploads', { headers: as(ownKey, headers), body }), 202)).json;

    const retrying = await upload({ content: 'Will be retried. Later on.', options: { maxAttempts: 3 } });
    const [claimed] = await claimJobs(own.pool, { workerId: 'docs', limit: 10, leaseSeconds: 30 });
    expect(claimed!.id).toBe(retrying.id);
    await failJobs(own.pool, [{ id: claimed!.id, token: claimed!.leaseToken, error: 'throttled', retryable: true }], { baseSeconds: 3600, maxSeconds: 3600 });

    const done = await upload({ content: 'Postgres is a database. It can also be a queue. Many teams run their jobs on it. The queue is durable.' });
    const broken = await upload({ content: '<p> </p>', contentType: 'text/html', options: { maxAttempts: 1 } });
    const config = processorConfig({ WORKER_ID: 'docs', JOB_TIMEOUT_MS: '10000', SAFETY_MARGIN_MS: '1000', SUMMARIZER: 'extractive' });
    await runProcessor(
      { pool: own.pool, config, logger, metrics: new RecordingMetrics(), work: jobWork(own.pool, createSummarizer(config), config) },
      fakeInvocation(30_000),
    );
    const later = await upload({ content: 'Runs later.', options: { runAt: new Date(Date.now() + 3600_000).toISOString() } });
    const waiting = await upload({ content: 'Waits for the one that runs later.', options: { dependsOn: [later.id] } });

    const get = async (id: string) => (await callOwn('/jobs/{id}', apiEvent('GET', `/jobs/${id}`, { headers: as(ownKey) }), 200)).json;
    expect(await get(retrying.id)).toMatchObject({ status: 'queued', attempts: 1, error: 'throttled', nextAttemptAt: expect.any(String) });
    expect(await get(done.id)).toMatchObject({ status: 'completed', result: { summary: expect.any(String), summarizer: 'extractive' }, error: null, progress: expect.any(Object) });
    expect(await get(broken.id)).toMatchObject({ status: 'failed', result: null, error: expect.stringMatching(/empty/) });
    expect(await get(waiting.id)).toMatchObject({ status: 'queued', waitingForDependencies: 1 });

    const first = await callOwn('/jobs', apiEvent('GET', '/jobs', { headers: as(ownKey), query: { limit: '2' } }), 200);
    expect(first.json.items).toHaveLength(2);
    expect(first.json.nextCursor).toEqual(expect.any(String));
    const rest = await callOwn('/jobs', apiEvent('GET', '/jobs', { headers: as(ownKey), query: { limit: '100', cursor: first.json.nextCursor } }), 200);
    expect(rest.json.nextCursor).toBeNull();
    await callOwn('/jobs', apiEvent('GET', '/jobs', { headers: as(ownKey), query: { status: 'completed' } }), 200);
    await callOwn('/jobs', apiEvent('GET', '/jobs', { headers: as(ownKey), query: { cursor: 'bm90LW91cnM' } }), 400);

    await callOwn('/jobs/{id}', apiEvent('GET', '/jobs/not-a-uuid', { headers: as(ownKey) }), 400);
    const unknown = await callOwn('/jobs/{id}', apiEvent('GET', '/jobs/01a2cafe-0000-7000-8000-000000000000', { headers: as(ownKey) }), 404);
    expect(unknown.json.type).toMatch(/not-found$/);
    // Another client's job is a 404, as if it did not exist.
    await callOwn('/jobs/{id}', apiEvent('GET', `/jobs/${done.id}`, { headers: as(ownOtherKey) }), 404);
    await callOwn('/jobs/{id}/cancel', apiEvent('POST', `/jobs/${later.id}/cancel`, { headers: as(ownOtherKey) }), 404);

    await callOwn('/jobs/{id}/retry', apiEvent('POST', `/jobs/${broken.id}/retry`, { headers: as(ownKey) }), 200);
    expect((await callOwn('/jobs/{id}/retry', apiEvent('POST', `/jobs/${broken.id}/retry`, { headers: as(ownKey) }), 409)).json.jobStatus).toBe('queued');
    await callOwn('/jobs/{id}/cancel', apiEvent('POST', `/jobs/${later.id}/cancel`, { headers: as(ownKey) }), 200);
    await callOwn('/jobs/{id}/cancel', apiEvent('POST', `/jobs/${later.id}/cancel`, { headers: as(ownKey) }), 409);
    await callOwn('/jobs/{id}/retry', apiEvent('POST', '/jobs/%E0%A4%A/retry', { headers: as(ownKey) }), 400);

    await callOwn('/stats', apiEvent('GET', '/stats', { headers: as(ownKey) }), 200);

    // The admin views of the same jobs.
    const adminJob = await callOwn('/admin/jobs/{id}', apiEvent('GET', `/admin/jobs/${done.id}`, { headers: admin() }), 200);
    expect(adminJob.json.clientId).toEqual(expect.any(String));
    await callOwn('/admin/jobs/{id}', apiEvent('GET', '/admin/jobs/01a2cafe-0000-7000-8000-000000000000', { headers: admin() }), 404);
    await callOwn('/admin/jobs/{id}/cancel', apiEvent('POST', `/admin/jobs/${retrying.id}/cancel`, { headers: admin() }), 200);
    await callOwn('/admin/jobs/{id}/retry', apiEvent('POST', `/admin/jobs/${retrying.id}/retry`, { headers: admin() }), 409);
    await own.pool.query(`UPDATE summary_jobs SET status = 'failed', finished_at = now() WHERE id = $1`, [retrying.id]);
    await callOwn('/admin/jobs/{id}/retry', apiEvent('POST', `/admin/jobs/${retrying.id}/retry`, { headers: admin() }), 200);
    await callOwn('/admin/jobs/{id}/cancel', apiEvent('POST', `/admin/jobs/${done.id}/cancel`, { headers: admin() }), 409);
  });

  it('schedules, limits, clients, stats, dashboard and health', async () => {
    const json = { 'content-type': 'application/json' };
    await call('/schedules', apiEvent('POST', '/schedules', { headers: as(key), body: { name: 'daily', cron: '0 7 * * *', timezone: 'Europe/Paris', options: { maxSentences: 4 } } }), 200);
    await call('/schedules', apiEvent('POST', '/schedules', { headers: as(key), body: { name: 'bad', cron: '61 * * * *' } }), 400);
    await call('/schedules', apiEvent('POST', '/schedules', { headers: as(key, { 'content-type': 'text/plain' }), body: 'name=daily' }), 415);
    await call('/schedules', apiEvent('POST', '/schedules', { headers: as(key, json), body: JSON.stringify({ name: 'x'.repeat(70 * 1024) }) }), 413);
    expect((await call('/schedules', apiEvent('GET', '/schedules', { headers: as(key) }), 200)).json.items).toHaveLength(1);
    await call('/schedules/{name}', apiEvent('DELETE', '/schedules/daily', { headers: as(key) }), 204);
    await call('/schedules/{name}', apiEvent('DELETE', '/schedules/daily', { headers: as(key) }), 404);
    await call('/schedules/{name}', apiEvent('DELETE', '/schedules/no%20spaces', { headers: as(key) }), 400);

    await call('/admin/limits', apiEvent('POST', '/admin/limits', { headers: admin(), body: { scope: 'job_type', key: 'summarize', maxPerInterval: 600 } }), 200);
    await call('/admin/limits', apiEvent('POST', '/admin/limits', { headers: admin(), body: { scope: 'job_type', key: 'summarize' } }), 400);
    await call('/admin/limits', apiEvent('POST', '/admin/limits', { headers: admin({ 'content-type': 'text/plain' }), body: '{}' }), 415);
    await call('/admin/limits', apiEvent('POST', '/admin/limits', { headers: admin(json), body: JSON.stringify({ key: 'k'.repeat(70 * 1024) }) }), 413);
    expect((await call('/admin/limits', apiEvent('GET', '/admin/limits', { headers: admin() }), 200)).json.items).toHaveLength(1);
    await call('/admin/limits/{scope}/{key}', apiEvent('DELETE', '/admin/limits/job_type/summarize', { headers: admin() }), 204);
    await call('/admin/limits/{scope}/{key}', apiEvent('DELETE', '/admin/limits/job_type/summarize', { headers: admin() }), 404);
    await call('/admin/limits/{scope}/{key}', apiEvent('DELETE', '/admin/limits/galaxy/summarize', { headers: admin() }), 400);

    const created = await call('/admin/clients', apiEvent('POST', '/admin/clients', { headers: admin(), body: { name: 'docs-new', weight: 2 } }), 201);
    expect(created.json.apiKey).toEqual(expect.any(String));
    await call('/admin/clients', apiEvent('POST', '/admin/clients', { headers: admin(), body: { name: 'docs-new' } }), 409);
    await call('/admin/clients', apiEvent('POST', '/admin/clients', { headers: admin(), body: { name: 'Not Valid' } }), 400);
    await call('/admin/clients', apiEvent('POST', '/admin/clients', { headers: admin({ 'content-type': 'text/plain' }), body: 'docs' }), 415);
    await call('/admin/clients', apiEvent('POST', '/admin/clients', { headers: admin(json), body: JSON.stringify({ name: 'n'.repeat(70 * 1024) }) }), 413);
    await call('/admin/clients', apiEvent('GET', '/admin/clients', { headers: admin() }), 200);
    await call('/admin/clients/{name}/revoke', apiEvent('POST', '/admin/clients/docs-new/revoke', { headers: admin() }), 200);
    await call('/admin/clients/{name}/revoke', apiEvent('POST', '/admin/clients/nobody/revoke', { headers: admin() }), 404);
    await call('/admin/clients/{name}/revoke', apiEvent('POST', '/admin/clients/%2Fslash/revoke', { headers: admin() }), 400);
    await call('/admin/stats', apiEvent('GET', '/admin/stats', { headers: admin() }), 200);

    await call('/admin/dashboard', apiEvent('GET', '/admin/dashboard', { headers: admin(), query: { windowMinutes: '30' } }), 200);
    await call('/admin/dashboard', apiEvent('GET', '/admin/dashboard', { headers: admin(), query: { windowMinutes: '0' } }), 400);
    await call('/dashboard', apiEvent('GET', '/dashboard'), 200);
    await call('/health', apiEvent('GET', '/health'), 200);
  });

  it('problems of the request itself, on routes of each kind: invalid-path, duplicate-header, Content-Encoding, charsets, an unknown admin key', async () => {
    const invalidPath = await call('/health', apiEvent('GET', '/health/.'), 400);
    expect(invalidPath.json.type).toMatch(/invalid-path$/);
    const twice = await call('/jobs', apiEvent('GET', '/jobs', { repeatedHeaders: { 'x-api-key': [key, key] } }), 400);
    expect(twice.json.type).toMatch(/duplicate-header$/);
    expect((await call('/admin/stats', apiEvent('GET', '/admin/stats', { headers: admin({ 'Content-Encoding': 'gzip' }) }), 415)).json.type).toMatch(/unsupported-content-encoding$/);
    const charset = await call('/uploads', apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain; charset=klingon' }), body: 'Words.' }), 415);
    expect(charset.json.type).toMatch(/unsupported-charset$/);
    await call('/schedules', apiEvent('POST', '/schedules', { headers: as(key, { 'content-type': 'application/json; charset=utf-16le' }), body: '{}' }), 415);
    await call('/uploads', apiEvent('POST', '/uploads', { headers: as(key), body: { content: 'Later.', options: { runAt: '2027-02-30T09:00:00Z' } } }), 400);
    await call('/uploads', apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: Buffer.from([0x61, 0xff, 0x62]) }), 400);
    const tz = await call('/schedules', apiEvent('POST', '/schedules', { headers: as(key), body: { name: 'tz', cron: '0 7 * * *', timezone: 'Mars/Olympus' } }), 400);
    expect(tz.json.detail).toMatch(/^timezone/);
    expect((await call('/admin/stats', apiEvent('GET', '/admin/stats', { headers: as('not-the-admin-key') }), 401)).json.type).toMatch(/invalid-api-key$/);
    const big = testApi(db.pool, { config: apiConfig({ MAX_UPLOAD_BYTES: String(4 * 1024 * 1024) }) });
    const long = await call('/uploads', apiEvent('POST', '/uploads', { headers: as(key, { 'content-type': 'text/plain' }), body: 'word '.repeat(520_000) }), 413, big);
    expect(long.json).toMatchObject({ type: expect.stringMatching(/text-too-long$/), limit: 2_000_000 });
  });

  it('503 with Retry-After on every route that needs the database, while it is unreachable', async () => {
    const unreachable = createPool({ connectionString: 'postgres://nobody@127.0.0.1:1/nothing', connectionTimeoutMillis: 1000 });
    const down = testApi(unreachable, { extraRoutes: dashboardRoutes });
    try {
      const res = await call('/health', apiEvent('GET', '/health'), 503, down);
      expect(res.headers!['retry-after']).toMatch(/^\d+$/);
      expect(res.json.type).toMatch(/database-unavailable$/);
      await call('/uploads', apiEvent('POST', '/uploads', { headers: as(key), body: { content: 'Not now.' } }), 503, down);
      await call('/admin/stats', apiEvent('GET', '/admin/stats', { headers: admin() }), 503, down);
      await call('/dashboard', apiEvent('GET', '/dashboard'), 200, down);
    } finally {
      await unreachable.end();
    }
    for (const r of SERVED) {
      const responses = operation(r.method, r.path).responses as Record<string, Schema>;
      const needsDatabase = !(r.method === 'GET' && r.path === '/dashboard');
      expect({ route: keyOf(r.method, r.path), has503: '503' in responses }).toEqual({ route: keyOf(r.method, r.path), has503: needsDatabase });
      if (needsDatabase) expect(Object.keys(deref(responses['503']!).headers)).toContain('Retry-After');
      // Every route can refuse the request itself (path, repeated header) and a content-encoded body.
      expect(Object.keys(responses)).toEqual(expect.arrayContaining(['400', '415']));
    }
  });

  it('every documented operation was seen answering with its success status', () => {
    const missing = [...documented.entries()]
      .map(([k, op]) => `${k} ${Object.keys(op.responses).find((c) => c.startsWith('2'))}`)
      .filter((k) => !checked.has(k));
    expect(missing).toEqual([]);
  });

  it('another method on a documented path is a 405 whose Allow lists the documented methods; an unknown path a 404', async () => {
    for (const [path, item] of Object.entries(doc.paths as Record<string, Schema>)) {
      const methods = Object.keys(item).filter((k) => HTTP_METHODS.includes(k)).map((m) => m.toUpperCase());
      const concrete = path.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'scope' ? 'client' : 'x'));
      const res = await api.call(apiEvent('PUT', concrete, { headers: as(key) }));
      expect({ path, status: res.statusCode, allow: res.headers!.allow }).toEqual({ path, status: 405, allow: methods.join(', ') });
      expect(item.description).toContain(`Allow: ${methods.join(', ')}`);
      expect(validate(res.json, { $ref: '#/components/schemas/Problem' })).toEqual([]);
    }
    const res = await api.call(apiEvent('GET', '/nowhere', { headers: as(key) }));
    expect(res.statusCode).toBe(404);
    expect(res.headers!['content-type']).toBe('application/problem+json');
    expect(validate(res.json, { $ref: '#/components/schemas/Problem' })).toEqual([]);
  });
});
