import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dashboardRoutes } from '../lambda/api/dashboard';
import { ROUTES } from '../lambda/api/routes';
import { createClient } from '../lambda/core/clients';
import { ADMIN_KEY, apiEvent, testApi } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/db';

/** openapi.json and the handler's route table describe the same API, and real responses match the documented schemas. */

type Schema = Record<string, any>;
const doc = JSON.parse(readFileSync(join(__dirname, '..', 'openapi.json'), 'utf8')) as Schema;
const routes = [...ROUTES, ...dashboardRoutes];
const documented = Object.entries(doc.paths as Record<string, Record<string, Schema>>).flatMap(([path, ops]) =>
  Object.entries(ops).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, op })),
);

describe('openapi.json and the route table', () => {
  it('is an OpenAPI 3 document', () => {
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.components.securitySchemes.ApiKey).toEqual(expect.objectContaining({ type: 'apiKey', in: 'header', name: 'x-api-key' }));
  });

  it('documents every route, and every documented route exists', () => {
    expect(documented.map((d) => d.key).sort()).toEqual(routes.map((r) => `${r.method} ${r.path}`).sort());
  });

  it('documents each route\'s authentication as the handler enforces it', () => {
    for (const route of routes) {
      const op = documented.find((d) => d.key === `${route.method} ${route.path}`)!.op;
      const schemes = (op.security ?? doc.security).flatMap((s: Schema) => Object.keys(s));
      const expected = { none: [], client: ['ApiKey'], admin: ['AdminKey'] }[route.auth];
      expect({ route: route.path, schemes }).toEqual({ route: route.path, schemes: expected });
      if (route.auth !== 'none') expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['401', '403']));
    }
  });
});

// A small validator for the subset of JSON Schema the document uses.
function resolve(schema: Schema): Schema {
  return schema.$ref ? resolve(doc.components.schemas[(schema.$ref as string).split('/').pop()!]) : schema;
}

function validate(value: unknown, raw: Schema, path = '$'): string[] {
  const schema = resolve(raw);
  if (value === null) return schema.nullable ? [] : [`${path}: null is not allowed`];
  if (schema.allOf) return (schema.allOf as Schema[]).flatMap((s) => validate(value, s, path));
  const errors: string[] = [];
  const type = schema.type as string | undefined;
  if (type === 'object') {
    if (typeof value !== 'object' || Array.isArray(value)) return [`${path}: expected an object`];
    const obj = value as Record<string, unknown>;
    for (const k of (schema.required ?? []) as string[]) if (!(k in obj)) errors.push(`${path}.${k}: required`);
    for (const [k, v] of Object.entries(obj)) {
      const prop = schema.properties?.[k];
      if (prop) errors.push(...validate(v, prop, `${path}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${path}.${k}: not in the schema`);
    }
  } else if (type === 'array') {
    if (!Array.isArray(value)) return [`${path}: expected an array`];
    value.forEach((v, i) => errors.push(...validate(v, schema.items ?? {}, `${path}[${i}]`)));
  } else if (type === 'integer') {
    if (!Number.isInteger(value)) errors.push(`${path}: expected an integer`);
  } else if (type === 'number') {
    if (typeof value !== 'number') errors.push(`${path}: expected a number`);
  } else if (type === 'boolean') {
    if (typeof value !== 'boolean') errors.push(`${path}: expected a boolean`);
  } else if (type === 'string') {
    if (typeof value !== 'string') return [`${path}: expected a string`];
    if (schema.format === 'uuid' && !/^[0-9a-f-]{36}$/.test(value)) errors.push(`${path}: not a uuid`);
    if (schema.format === 'date-time' && Number.isNaN(Date.parse(value))) errors.push(`${path}: not a date-time`);
  }
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) errors.push(`${path}: ${String(value)} is not one of ${schema.enum}`);
  return errors;
}

describe('responses match the documented schemas', () => {
  let db: TestDatabase;
  let api: ReturnType<typeof testApi>;
  let key: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    api = testApi(db.pool);
    key = (await createClient(db.pool, 'docs')).apiKey;
  });
  afterAll(async () => {
    await db.drop();
  });

  function check(method: string, path: string, res: { statusCode: number; headers?: Record<string, unknown>; json: unknown }) {
    const op = documented.find((d) => d.key === `${method} ${path}`)!.op;
    const documentedResponse = op.responses[String(res.statusCode)];
    expect({ status: res.statusCode, documented: Boolean(documentedResponse) }).toEqual({ status: res.statusCode, documented: true });
    const contentType = String(res.headers?.['content-type'] ?? '');
    const schema = documentedResponse.content?.[contentType]?.schema;
    expect({ contentType, documented: Boolean(schema) }).toEqual({ contentType, documented: true });
    expect(validate(res.json, schema)).toEqual([]);
  }

  it('for uploads, jobs, lists, stats, schedules and errors', async () => {
    const headers = { 'x-api-key': key };
    const up = await api.call(apiEvent('POST', '/uploads', { headers, body: { content: 'Docs. More docs.', filename: 'd.txt', options: { priority: 3 } } }));
    check('POST', '/uploads', up);
    check('GET', '/jobs/{id}', await api.call(apiEvent('GET', `/jobs/${up.json.id}`, { headers })));
    check('GET', '/jobs', await api.call(apiEvent('GET', '/jobs', { headers, query: { limit: '1' } })));
    check('GET', '/stats', await api.call(apiEvent('GET', '/stats', { headers })));
    check('POST', '/schedules', await api.call(apiEvent('POST', '/schedules', { headers, body: { name: 'daily', cron: '0 7 * * *' } })));
    check('GET', '/schedules', await api.call(apiEvent('GET', '/schedules', { headers })));
    check('POST', '/jobs/{id}/cancel', await api.call(apiEvent('POST', `/jobs/${up.json.id}/cancel`, { headers })));
    check('POST', '/jobs/{id}/cancel', await api.call(apiEvent('POST', `/jobs/${up.json.id}/cancel`, { headers })));
    check('GET', '/jobs', await api.call(apiEvent('GET', '/jobs')));
    check('GET', '/jobs/{id}', await api.call(apiEvent('GET', '/jobs/01a2cafe-0000-7000-8000-000000000000', { headers })));
    check('POST', '/uploads', await api.call(apiEvent('POST', '/uploads', { headers: { ...headers, 'content-type': 'image/gif' }, body: 'GIF89a' })));
    check('GET', '/admin/stats', await api.call(apiEvent('GET', '/admin/stats', { headers: { 'x-api-key': ADMIN_KEY } })));
    check('GET', '/admin/clients', await api.call(apiEvent('GET', '/admin/clients', { headers: { 'x-api-key': ADMIN_KEY } })));
    check('POST', '/admin/clients', await api.call(apiEvent('POST', '/admin/clients', { headers: { 'x-api-key': ADMIN_KEY }, body: { name: 'docs2' } })));
    check('GET', '/admin/stats', await api.call(apiEvent('GET', '/admin/stats', { headers })));
  });

  it('the validator notices a response that does not match', () => {
    expect(validate({ id: 'x' }, { $ref: '#/components/schemas/Job' })).not.toEqual([]);
    expect(validate({ type: 't', title: 't', status: 400, detail: 'd' }, { $ref: '#/components/schemas/Problem' })).toEqual([]);
  });
});
