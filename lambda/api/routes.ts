import { timingSafeEqual, createHash } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { Pool } from 'pg';
import { Metric } from '../core/alarm-rules';
import type { ApiConfig } from '../core/config';
import { ClientExistsError, createClient, findClientByKey, listClients, revokeClient, type ApiClient } from '../core/clients';
import { isTransientDbError } from '../core/db';
import { ProblemError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { MetricsSink } from '../core/metrics';
import { QueueInputError, cancelJob, getJob, listJobs, queueStats, retryJob, type ChangeResult } from '../core/queue';
import { submitUpload } from '../core/uploads';
import { badRequest, header, headerValues, isWellFormed, json, notFound, problem, unsupportedMediaType } from './http';
import { presentJob } from './present';
import { encodeCursor, jobIdOf, parseLimit, parseListQuery, parseNewClient, parseSchedule, parseUpload, scheduleNameOf } from './validate';
import { deleteSchedule, listSchedules, upsertSchedule, ScheduleError, type Schedule } from '../core/recurring';
import { deleteRateLimit, listRateLimits, setRateLimit } from '../core/limits';

/**
 * The API as one route table. The Lambda handler and the local HTTP server both
 * call `createApiHandler(deps)`; only the deps differ (where the pool, the admin
 * key and the processor nudge come from).
 */

export interface ApiDeps {
  pool: () => Promise<Pool>;
  /** The admin credential (Secrets Manager in AWS). */
  adminKey: () => Promise<string>;
  /** Wakes the processor after a job commits; failures are logged, never returned to the client. */
  nudge: () => Promise<void>;
  logger: Logger;
  config: ApiConfig;
  /** Extra admin routes (the dashboard's data) registered by other modules. */
  extraRoutes?: Route[];
  /** Where DatabaseErrors is counted (EMF in Lambda, the local alarm evaluator locally); none: not counted. */
  metrics?: MetricsSink;
}

export type Auth = 'none' | 'client' | 'admin';

export interface RequestContext {
  event: APIGatewayProxyEvent;
  params: Record<string, string>;
  pool: Pool;
  client: ApiClient | null;
  deps: ApiDeps;
  /** This request's logger: the shared one's keys plus the request's own, which never outlive it. */
  logger: Logger;
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  /** With {name} placeholders, as in the OpenAPI document. */
  path: string;
  auth: Auth;
  handle: (ctx: RequestContext) => Promise<APIGatewayProxyResult>;
}

function changeResponse(result: ChangeResult, action: string, allowedFrom: string): APIGatewayProxyResult {
  if (result.ok) return json(200, presentJob(result.job));
  if (result.reason === 'not_found') throw notFound('no such job');
  throw new ProblemError(409, 'Conflict', `only a ${allowedFrom} job can be ${action}; this one is ${result.job.status}`, 'invalid-state', {
    jobStatus: result.job.status,
  });
}

const clientId = (ctx: RequestContext) => ctx.client!.id;

function presentSchedule(s: Schedule): Record<string, unknown> {
  return {
    name: s.name,
    cron: s.cron,
    timezone: s.timezone,
    jobType: s.jobType,
    options: s.payload,
    priority: s.priority,
    nextRunAt: s.nextRunAt.toISOString(),
    lastTickAt: s.lastTickAt?.toISOString() ?? null,
    lastJobId: s.lastJobId,
    missedTicks: s.missedTicks,
  };
}

export const ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/health',
    auth: 'none',
    handle: async ({ pool }) => {
      await pool.query('SELECT 1');
      return json(200, { status: 'ok' });
    },
  },
  {
    method: 'POST',
    path: '/uploads',
    auth: 'client',
    handle: async (ctx) => {
      const request = parseUpload(ctx.event, clientId(ctx), { maxUploadBytes: ctx.deps.config.maxUploadBytes });
      let result;
      try {
        result = await submitUpload(ctx.pool, request);
      } catch (err) {
        if (err instanceof QueueInputError) throw new ProblemError(422, 'Unprocessable request', err.message, 'invalid-dependency');
        throw err;
      }
      if (result.kind === 'key_conflict') {
        throw new ProblemError(
          422,
          'Idempotency key reused',
          'this Idempotency-Key was used before with a different request; use a new key for a new document',
          'idempotency-key-reused',
          { jobId: result.job.id },
        );
      }
      const { job } = result;
      ctx.logger.info('upload accepted', { jobId: job.id, replayed: result.kind === 'replayed', bytes: request.content.length });
      if (result.kind === 'created') {
        await ctx.deps.nudge().catch((err) => ctx.logger.warn('processor nudge failed; the schedule will pick the job up', { err }));
      }
      return json(202, presentJob(job), {
        location: `/jobs/${job.id}`,
        ...(result.kind === 'replayed' ? { 'idempotent-replayed': 'true' } : {}),
      });
    },
  },
  {
    method: 'GET',
    path: '/jobs',
    auth: 'client',
    handle: async (ctx) => {
      const q = parseListQuery(ctx.event.queryStringParameters);
      const jobs = await listJobs(ctx.pool, clientId(ctx), { ...q, limit: q.limit + 1 });
      const page = jobs.slice(0, q.limit);
      const more = jobs.length > q.limit;
      return json(200, { items: page.map(presentJob), nextCursor: more ? encodeCursor(page[page.length - 1]!.id) : null });
    },
  },
  {
    method: 'GET',
    path: '/jobs/{id}',
    auth: 'client',
    handle: async (ctx) => {
      const job = await getJob(ctx.pool, jobIdOf(ctx.params.id), clientId(ctx));
      if (!job) throw notFound('no such job');
      return json(200, presentJob(job));
    },
  },
  {
    method: 'POST',
    path: '/jobs/{id}/cancel',
    auth: 'client',
    handle: async (ctx) => changeResponse(await cancelJob(ctx.pool, jobIdOf(ctx.params.id), clientId(ctx)), 'cancelled', 'queued'),
  },
  {
    method: 'POST',
    path: '/jobs/{id}/retry',
    auth: 'client',
    handle: async (ctx) => changeResponse(await retryJob(ctx.pool, jobIdOf(ctx.params.id), clientId(ctx)), 'retried', 'failed'),
  },
  {
    method: 'GET',
    path: '/stats',
    auth: 'client',
    handle: async (ctx) => json(200, await queueStats(ctx.pool, { clientId: clientId(ctx) })),
  },
  {
    method: 'GET',
    path: '/schedules',
    auth: 'client',
    handle: async (ctx) => json(200, { items: (await listSchedules(ctx.pool, clientId(ctx))).map(presentSchedule) }),
  },
  {
    method: 'POST',
    path: '/schedules',
    auth: 'client',
    handle: async (ctx) => {
      const input = parseSchedule(ctx.event);
      try {
        const schedule = await upsertSchedule(ctx.pool, {
          clientId: clientId(ctx),
          name: input.name,
          cron: input.cron,
          timezone: input.timezone,
          jobType: input.jobType,
          priority: input.priority,
          payload: { windowHours: input.windowHours, ...(input.maxSentences ? { maxSentences: input.maxSentences } : {}) },
        });
        return json(200, presentSchedule(schedule));
      } catch (err) {
        if (err instanceof ScheduleError) throw badRequest(err.message, 'invalid-schedule');
        throw err;
      }
    },
  },
  {
    method: 'DELETE',
    path: '/schedules/{name}',
    auth: 'client',
    handle: async (ctx) => {
      if (!(await deleteSchedule(ctx.pool, clientId(ctx), scheduleNameOf(ctx.params.name)))) throw notFound('no such schedule');
      return { statusCode: 204, headers: { 'cache-control': 'no-store' }, body: '' };
    },
  },
  {
    method: 'GET',
    path: '/admin/limits',
    auth: 'admin',
    handle: async (ctx) => json(200, { items: await listRateLimits(ctx.pool) }),
  },
  {
    method: 'POST',
    path: '/admin/limits',
    auth: 'admin',
    handle: async (ctx) => {
      const limit = parseLimit(ctx.event);
      await setRateLimit(ctx.pool, limit);
      return json(200, limit);
    },
  },
  {
    method: 'DELETE',
    path: '/admin/limits/{scope}/{key}',
    auth: 'admin',
    handle: async (ctx) => {
      const scope = ctx.params.scope;
      if (scope !== 'client' && scope !== 'job_type') throw badRequest('scope must be "client" or "job_type"');
      if (!(await deleteRateLimit(ctx.pool, scope, ctx.params.key!.slice(0, 100)))) throw notFound('no such limit');
      return { statusCode: 204, headers: { 'cache-control': 'no-store' }, body: '' };
    },
  },
  {
    method: 'GET',
    path: '/admin/stats',
    auth: 'admin',
    handle: async (ctx) => json(200, await queueStats(ctx.pool)),
  },
  {
    method: 'GET',
    path: '/admin/clients',
    auth: 'admin',
    handle: async (ctx) => json(200, { items: await listClients(ctx.pool) }),
  },
  {
    method: 'POST',
    path: '/admin/clients',
    auth: 'admin',
    handle: async (ctx) => {
      const input = parseNewClient(ctx.event);
      try {
        const { client, apiKey } = await createClient(ctx.pool, input.name, { weight: input.weight });
        // The key is in this response and nowhere else: only its hash is stored.
        return json(201, { ...client, apiKey });
      } catch (err) {
        if (err instanceof ClientExistsError) throw new ProblemError(409, 'Conflict', err.message, 'client-exists');
        throw err;
      }
    },
  },
  {
    method: 'POST',
    path: '/admin/clients/{name}/revoke',
    auth: 'admin',
    handle: async (ctx) => {
      if (!(await revokeClient(ctx.pool, scheduleNameOf(ctx.params.name, 'client name')))) throw notFound('no such client');
      return json(200, { name: ctx.params.name, revoked: true });
    },
  },
  {
    method: 'GET',
    path: '/admin/jobs/{id}',
    auth: 'admin',
    handle: async (ctx) => {
      const job = await getJob(ctx.pool, jobIdOf(ctx.params.id), null);
      if (!job) throw notFound('no such job');
      return json(200, { ...presentJob(job), clientId: job.clientId });
    },
  },
  {
    method: 'POST',
    path: '/admin/jobs/{id}/retry',
    auth: 'admin',
    handle: async (ctx) => changeResponse(await retryJob(ctx.pool, jobIdOf(ctx.params.id), null), 'retried', 'failed'),
  },
  {
    method: 'POST',
    path: '/admin/jobs/{id}/cancel',
    auth: 'admin',
    handle: async (ctx) => changeResponse(await cancelJob(ctx.pool, jobIdOf(ctx.params.id), null), 'cancelled', 'queued'),
  },
];

// --- matching and authentication ---------------------------------------------

/** Seconds a client is asked to wait after a 503: long enough for a failover or a restart, short enough not to matter. */
export const RETRY_AFTER_SECONDS = 5;

/** Headers that mean one thing: a second copy (which one wins?) is refused, never guessed. */
const SINGLE_VALUED_HEADERS = ['x-api-key', 'content-type', 'content-encoding', 'idempotency-key'];

function compile(path: string): { re: RegExp; names: string[] } {
  const names: string[] = [];
  const source = path.replace(/\{(\w+)\}/g, (_, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { re: new RegExp(`^${source}/?$`), names };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** A copy whose keys are plain data: no `constructor` or `__proto__` lookup can reach Object.prototype. */
function dataOnly<T>(values: Record<string, T> | null | undefined): Record<string, T> | null {
  return values ? Object.assign(Object.create(null) as Record<string, T>, values) : null;
}

/**
 * What every request must be before routing: a path without empty or dot
 * segments (`//admin/stats` is not `/admin/stats`, nor a client's `/stats`),
 * well-formed text in the path, query and headers, one value for each header
 * that must be single, and a body that is not content-encoded (compressed
 * bytes would be stored as if they were the document).
 */
function checkRequestShape(event: APIGatewayProxyEvent, path: string): void {
  const segments = path.split('/');
  const emptyInside = segments.slice(1, -1).some((s) => s === '');
  if (!path.startsWith('/') || path.length > 2048 || emptyInside || segments.some((s) => s === '.' || s === '..') || !isWellFormed(path)) {
    throw badRequest('the path is not a valid API path (empty, "." or ".." segments are not allowed)', 'invalid-path');
  }
  const texts = [
    ...Object.entries(event.queryStringParameters ?? {}).flat(),
    ...Object.entries(event.multiValueQueryStringParameters ?? {}).flat(2),
    ...Object.entries(event.headers ?? {}).flat(),
    ...Object.entries(event.multiValueHeaders ?? {}).flat(2),
  ];
  if (texts.some((t) => typeof t === 'string' && !isWellFormed(t))) {
    throw badRequest('the query string or a header holds a lone UTF-16 surrogate; send valid Unicode text', 'invalid-text');
  }
  for (const name of SINGLE_VALUED_HEADERS) {
    if (headerValues(event, name).length > 1) throw badRequest(`send the ${name} header once`, 'duplicate-header');
  }
  const encoding = header(event, 'content-encoding');
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw unsupportedMediaType(`Content-Encoding ${encoding.slice(0, 40)} is not supported; send the body uncompressed`, 'unsupported-content-encoding');
  }
}

async function authenticate(route: Route, event: APIGatewayProxyEvent, pool: Pool, deps: ApiDeps): Promise<ApiClient | null> {
  if (route.auth === 'none') return null;
  const key = header(event, 'x-api-key');
  if (!key) throw new ProblemError(401, 'Unauthorized', 'send your API key in the x-api-key header', 'missing-api-key');
  const invalid = () => new ProblemError(401, 'Unauthorized', 'the API key is not valid', 'invalid-api-key');
  if (route.auth === 'admin') {
    if (timingSafeEqual(digest(key), digest(await deps.adminKey()))) return null;
    // A client's own key is known and not enough (403); any other key is unknown (401).
    if (key.length <= 200 && (await findClientByKey(pool, key))) {
      throw new ProblemError(403, 'Forbidden', 'this operation needs the admin credential', 'admin-only');
    }
    throw invalid();
  }
  if (key.length > 200) throw invalid();
  const client = await findClientByKey(pool, key);
  if (!client) throw invalid();
  if (client.revokedAt) throw new ProblemError(403, 'Forbidden', 'this API key was revoked', 'api-key-revoked');
  return client;
}

export function createApiHandler(deps: ApiDeps) {
  const routes = [...ROUTES, ...(deps.extraRoutes ?? [])].map((r) => ({ ...r, ...compile(r.path) }));

  return async function handler(rawEvent: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
    const event: APIGatewayProxyEvent = {
      ...rawEvent,
      headers: dataOnly(rawEvent.headers) ?? {},
      multiValueHeaders: dataOnly(rawEvent.multiValueHeaders) ?? {},
      queryStringParameters: dataOnly(rawEvent.queryStringParameters),
      multiValueQueryStringParameters: dataOnly(rawEvent.multiValueQueryStringParameters),
    };
    const path = typeof event.path === 'string' ? event.path : '/';
    const instance = isWellFormed(path) ? path.slice(0, 200) : undefined;
    // A child per request: its keys (and the Lambda context) never reach a later
    // request's lines, nor, in local mode, the processor's, which share the parent.
    const logger = deps.logger.createChild();
    if (context) logger.addContext(context);
    logger.appendKeys({ requestId: event.requestContext?.requestId, path: instance, method: event.httpMethod });
    try {
      checkRequestShape(event, path);
      const onPath = routes.filter((r) => r.re.test(path));
      if (onPath.length === 0) throw notFound(`no route for ${path.slice(0, 200)}`);
      const route = onPath.find((r) => r.method === event.httpMethod);
      if (!route) {
        throw new ProblemError(405, 'Method not allowed', `${path.slice(0, 200)} accepts ${onPath.map((r) => r.method).join(', ')}`, 'method-not-allowed', {
          allow: onPath.map((r) => r.method),
        });
      }
      const match = route.re.exec(path)!;
      const params: Record<string, string> = Object.create(null);
      route.names.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(match[i + 1]!);
        } catch {
          throw badRequest(`the ${name} in the path is not valid`);
        }
      });
      const pool = await deps.pool();
      const client = await authenticate(route, event, pool, deps);
      if (client) logger.appendKeys({ clientId: client.id });
      return await route.handle({ event, params, pool, client, deps, logger });
    } catch (err) {
      if (err instanceof ProblemError) {
        if (err.status >= 500) logger.error('request failed', { err });
        return problem(err, instance);
      }
      if (isTransientDbError(err)) {
        // The database (or the way to it) failed, not the request: say so, and when to come back.
        logger.warn('database unavailable; answered 503', { err });
        deps.metrics?.add(Metric.DatabaseErrors, 1);
        deps.metrics?.flush();
        return problem(
          new ProblemError(503, 'Service unavailable', `the database is not answering; retry in ${RETRY_AFTER_SECONDS} seconds`, 'database-unavailable'),
          instance,
          { 'retry-after': String(RETRY_AFTER_SECONDS) },
        );
      }
      logger.error('unhandled error', err as Error);
      return problem(new ProblemError(500, 'Internal server error', 'the request could not be completed; it was logged', 'internal'), instance);
    }
  };
}
