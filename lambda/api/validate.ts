import type { APIGatewayProxyEvent } from 'aws-lambda';
import { ProblemError } from '../core/errors';
import { isUuid } from '../core/ids';
import { JOB_STATUSES, type JobStatus } from '../core/queue';
import { sha256, type UploadRequest } from '../core/uploads';
import { badRequest, header } from './http';

/**
 * Request parsing. Everything a client sends is checked here, and every
 * failure is a ProblemError naming the field, so a bad request is a 4xx and
 * never reaches the database.
 */

export const DOCUMENT_TYPES = ['text/plain', 'text/markdown', 'text/html', 'application/pdf'] as const;
export type DocumentType = (typeof DOCUMENT_TYPES)[number];

const MAX_DEPENDENCIES = 500;
const MAX_SCHEDULE_AHEAD_MS = 366 * 24 * 3600 * 1000;

export interface UploadLimits {
  maxUploadBytes: number;
}

function mediaType(value: string | undefined): string | undefined {
  return value?.split(';')[0]?.trim().toLowerCase() || undefined;
}

export function isDocumentType(value: string): value is DocumentType {
  return (DOCUMENT_TYPES as readonly string[]).includes(value);
}

function bodyBytes(event: Pick<APIGatewayProxyEvent, 'body' | 'isBase64Encoded'>): Buffer {
  if (event.body === null || event.body === undefined) return Buffer.alloc(0);
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
}

function tooLarge(size: number, limit: number): ProblemError {
  return new ProblemError(413, 'Payload too large', `the document is ${size} bytes; the limit is ${limit} bytes`, 'payload-too-large', {
    limit,
  });
}

// --- field checks -----------------------------------------------------------

function intIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw badRequest(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function intParam(name: string, raw: string, min: number, max: number): number {
  if (!/^-?\d{1,6}$/.test(raw)) throw badRequest(`${name} must be an integer from ${min} to ${max}`);
  return intIn(name, Number(raw), min, max);
}

function runAtOf(name: string, value: unknown, now: number): Date {
  if (typeof value !== 'string' || value.length > 40 || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    throw badRequest(`${name} must be an ISO 8601 date-time with a time zone, e.g. 2026-01-31T09:00:00Z`);
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw badRequest(`${name} is not a valid date-time`);
  if (t - now > MAX_SCHEDULE_AHEAD_MS) throw badRequest(`${name} may be at most one year ahead`);
  return new Date(t);
}

function filenameOf(value: unknown): string {
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || value.length === 0 || value.length > 255 || /[\u0000-\u001f\u007f]/.test(value)) {
    throw badRequest('filename must be a string of 1 to 255 characters without control characters');
  }
  return value;
}

function dependsOnOf(value: unknown): string[] {
  if (!Array.isArray(value) || value.length > MAX_DEPENDENCIES || !value.every((v) => typeof v === 'string' && isUuid(v))) {
    throw badRequest(`options.dependsOn must be a list of at most ${MAX_DEPENDENCIES} job ids (UUIDs)`);
  }
  return [...new Set((value as string[]).map((v) => v.toLowerCase()))];
}

export function jobIdOf(raw: string | undefined): string {
  if (!raw || !isUuid(raw)) throw badRequest('the job id must be a UUID', 'invalid-job-id');
  return raw.toLowerCase();
}

function rejectUnknown(where: string, obj: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(obj).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw badRequest(`unknown field${unknown.length > 1 ? 's' : ''} in ${where}: ${unknown.slice(0, 5).join(', ')}`, 'unknown-field');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// --- uploads ------------------------------------------------------------------

interface UploadOptions {
  priority: number;
  runAt: Date | null;
  maxSentences: number | null;
  maxAttempts: number;
  dependsOn: string[];
}

const OPTION_FIELDS = ['priority', 'runAt', 'maxSentences', 'maxAttempts', 'dependsOn'] as const;

function optionsFromJson(value: unknown, now: number): UploadOptions {
  if (value === undefined) return { priority: 0, runAt: null, maxSentences: null, maxAttempts: 5, dependsOn: [] };
  if (!isPlainObject(value)) throw badRequest('options must be an object');
  rejectUnknown('options', value, OPTION_FIELDS);
  return {
    priority: value.priority === undefined ? 0 : intIn('options.priority', value.priority, -100, 100),
    runAt: value.runAt === undefined || value.runAt === null ? null : runAtOf('options.runAt', value.runAt, now),
    maxSentences: value.maxSentences === undefined ? null : intIn('options.maxSentences', value.maxSentences, 1, 50),
    maxAttempts: value.maxAttempts === undefined ? 5 : intIn('options.maxAttempts', value.maxAttempts, 1, 20),
    dependsOn: value.dependsOn === undefined ? [] : dependsOnOf(value.dependsOn),
  };
}

const QUERY_FIELDS = [...OPTION_FIELDS, 'filename'] as const;

function optionsFromQuery(query: Record<string, string | undefined>, now: number): UploadOptions & { filename: string | null } {
  rejectUnknown('the query string', query, QUERY_FIELDS);
  return {
    priority: query.priority === undefined ? 0 : intParam('priority', query.priority, -100, 100),
    runAt: query.runAt === undefined ? null : runAtOf('runAt', query.runAt, now),
    maxSentences: query.maxSentences === undefined ? null : intParam('maxSentences', query.maxSentences, 1, 50),
    maxAttempts: query.maxAttempts === undefined ? 5 : intParam('maxAttempts', query.maxAttempts, 1, 20),
    dependsOn: query.dependsOn === undefined ? [] : dependsOnOf(query.dependsOn.split(',')),
    filename: query.filename === undefined ? null : filenameOf(query.filename),
  };
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** A JSON object body, or a 400 saying what is wrong with it. */
function parseJsonObject(bytes: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw badRequest('the body is not valid JSON', 'malformed-json');
  }
  if (!isPlainObject(parsed)) throw badRequest('the JSON body must be an object');
  return parsed;
}

function documentFromJson(bytes: Buffer, now: number, limits: UploadLimits) {
  const parsed = parseJsonObject(bytes);
  rejectUnknown('the body', parsed, ['content', 'contentBase64', 'contentType', 'filename', 'options']);
  const { content, contentBase64 } = parsed;
  if ((content === undefined) === (contentBase64 === undefined)) {
    throw badRequest('give the document as exactly one of content (text) or contentBase64 (bytes, e.g. a PDF)');
  }
  let document: Buffer;
  if (content !== undefined) {
    if (typeof content !== 'string') throw badRequest('content must be a string');
    document = Buffer.from(content, 'utf8');
  } else {
    if (typeof contentBase64 !== 'string' || contentBase64.length % 4 !== 0 || !BASE64_RE.test(contentBase64)) {
      throw badRequest('contentBase64 must be standard base64');
    }
    document = Buffer.from(contentBase64, 'base64');
  }
  if (document.length > limits.maxUploadBytes) throw tooLarge(document.length, limits.maxUploadBytes);
  const type = parsed.contentType === undefined ? (contentBase64 !== undefined ? 'application/pdf' : 'text/plain') : parsed.contentType;
  if (typeof type !== 'string' || !isDocumentType(type)) {
    throw new ProblemError(415, 'Unsupported media type', `contentType must be one of ${DOCUMENT_TYPES.join(', ')}`, 'unsupported-media-type');
  }
  return {
    document,
    contentType: type,
    filename: parsed.filename === undefined || parsed.filename === null ? null : filenameOf(parsed.filename),
    options: optionsFromJson(parsed.options, now),
  };
}

/** Turns a POST /uploads event into an upload request for the given client. */
export function parseUpload(event: APIGatewayProxyEvent, clientId: string, limits: UploadLimits, now = Date.now()): UploadRequest {
  const type = mediaType(header(event, 'content-type'));
  const bytes = bodyBytes(event);
  // JSON carries the document inside; allow for its quoting and base64 overhead.
  const envelope = type === 'application/json' ? Math.ceil(limits.maxUploadBytes * 1.4) + 64 * 1024 : limits.maxUploadBytes;
  if (bytes.length > envelope) throw tooLarge(bytes.length, limits.maxUploadBytes);

  let parsed: { document: Buffer; contentType: DocumentType; filename: string | null; options: UploadOptions };
  const query = event.queryStringParameters ?? {};
  if (type === 'application/json') {
    if (Object.keys(query).length > 0) throw badRequest('with a JSON body, pass options in the body, not the query string');
    parsed = documentFromJson(bytes, now, limits);
  } else if (type && isDocumentType(type)) {
    const { filename, ...options } = optionsFromQuery(query, now);
    parsed = { document: bytes, contentType: type, filename, options };
  } else {
    throw new ProblemError(
      415,
      'Unsupported media type',
      `${type ? `content type ${type.slice(0, 100)} is not supported` : 'the Content-Type header is missing'}; ` +
        `send one of ${DOCUMENT_TYPES.join(', ')} or application/json`,
      'unsupported-media-type',
    );
  }
  if (parsed.document.length === 0 || (parsed.contentType !== 'application/pdf' && parsed.document.toString('utf8').trim() === '')) {
    throw badRequest('the document is empty', 'empty-document');
  }

  const idempotencyKey = header(event, 'idempotency-key') ?? null;
  if (idempotencyKey !== null && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
    throw badRequest('Idempotency-Key must be 1 to 255 visible ASCII characters', 'invalid-idempotency-key');
  }
  const { options } = parsed;
  const fingerprint = JSON.stringify({
    type: parsed.contentType,
    filename: parsed.filename,
    options: { ...options, runAt: options.runAt?.toISOString() ?? null },
    sha: sha256(parsed.document),
  });
  return {
    clientId,
    content: parsed.document,
    contentType: parsed.contentType,
    filename: parsed.filename,
    priority: options.priority,
    runAt: options.runAt,
    maxAttempts: options.maxAttempts,
    maxSentences: options.maxSentences,
    dependsOn: options.dependsOn,
    idempotencyKey,
    requestHash: sha256(fingerprint),
  };
}

// --- listing ------------------------------------------------------------------

export interface ListQuery {
  status?: JobStatus;
  limit: number;
  before?: string;
}

export function encodeCursor(id: string): string {
  return Buffer.from(`j:${id}`, 'utf8').toString('base64url');
}

export function parseListQuery(query: Record<string, string | undefined> | null, extra: readonly string[] = []): ListQuery {
  const q = query ?? {};
  rejectUnknown('the query string', q, ['status', 'limit', 'cursor', ...extra]);
  const out: ListQuery = { limit: q.limit === undefined ? 20 : intParam('limit', q.limit, 1, 100) };
  if (q.status !== undefined) {
    if (!(JOB_STATUSES as readonly string[]).includes(q.status)) throw badRequest(`status must be one of ${JOB_STATUSES.join(', ')}`);
    out.status = q.status as JobStatus;
  }
  if (q.cursor !== undefined) {
    const decoded = /^[A-Za-z0-9_-]{1,100}$/.test(q.cursor) ? Buffer.from(q.cursor, 'base64url').toString('utf8') : '';
    const id = decoded.startsWith('j:') ? decoded.slice(2) : '';
    if (!isUuid(id)) throw badRequest('cursor is not one this API issued', 'invalid-cursor');
    out.before = id.toLowerCase();
  }
  return out;
}

// --- schedules and limits -------------------------------------------------------

function jsonObject(event: Pick<APIGatewayProxyEvent, 'body' | 'isBase64Encoded' | 'headers'>): Record<string, unknown> {
  if (mediaType(header(event, 'content-type')) !== 'application/json') {
    throw new ProblemError(415, 'Unsupported media type', 'send application/json', 'unsupported-media-type');
  }
  const bytes = bodyBytes(event);
  if (bytes.length > 64 * 1024) throw tooLarge(bytes.length, 64 * 1024);
  return parseJsonObject(bytes);
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function scheduleNameOf(raw: unknown, field = 'name'): string {
  if (typeof raw !== 'string' || !NAME_RE.test(raw)) throw badRequest(`${field} must be 1-63 letters, digits, dot, dash or underscore`);
  return raw;
}

export interface ScheduleInput {
  name: string;
  cron: string;
  timezone: string;
  jobType: 'digest';
  maxSentences: number | null;
  windowHours: number;
  priority: number;
}

export function parseSchedule(event: APIGatewayProxyEvent): ScheduleInput {
  const body = jsonObject(event);
  rejectUnknown('the body', body, ['name', 'cron', 'timezone', 'jobType', 'options']);
  if (typeof body.cron !== 'string' || body.cron.length === 0 || body.cron.length > 100) throw badRequest('cron must be a cron expression, e.g. "0 7 * * *"');
  if (body.timezone !== undefined && (typeof body.timezone !== 'string' || !/^[A-Za-z_+\-/0-9]{1,64}$/.test(body.timezone))) {
    throw badRequest('timezone must be an IANA time zone name, e.g. Europe/Paris');
  }
  if (body.jobType !== undefined && body.jobType !== 'digest') throw badRequest('jobType must be "digest"');
  const options = body.options === undefined ? {} : body.options;
  if (!isPlainObject(options)) throw badRequest('options must be an object');
  rejectUnknown('options', options, ['priority', 'maxSentences', 'windowHours']);
  return {
    name: scheduleNameOf(body.name),
    cron: body.cron,
    timezone: (body.timezone as string | undefined) ?? 'UTC',
    jobType: 'digest',
    priority: options.priority === undefined ? 0 : intIn('options.priority', options.priority, -100, 100),
    maxSentences: options.maxSentences === undefined ? null : intIn('options.maxSentences', options.maxSentences, 1, 50),
    windowHours: options.windowHours === undefined ? 24 : intIn('options.windowHours', options.windowHours, 1, 24 * 31),
  };
}

export interface LimitInput {
  scope: 'client' | 'job_type';
  key: string;
  maxPerInterval: number | null;
  intervalSeconds: number;
  maxRunning: number | null;
}

export function parseLimit(event: APIGatewayProxyEvent): LimitInput {
  const body = jsonObject(event);
  rejectUnknown('the body', body, ['scope', 'key', 'maxPerInterval', 'intervalSeconds', 'maxRunning']);
  if (body.scope !== 'client' && body.scope !== 'job_type') throw badRequest('scope must be "client" or "job_type"');
  if (body.scope === 'client' && (typeof body.key !== 'string' || !isUuid(body.key))) throw badRequest('key must be the client id (a UUID) for scope "client"');
  if (body.scope === 'job_type' && (typeof body.key !== 'string' || !NAME_RE.test(body.key))) throw badRequest('key must be a job type name');
  const nullableInt = (name: string, v: unknown) => (v === undefined || v === null ? null : intIn(name, v, 0, 1_000_000));
  const limit: LimitInput = {
    scope: body.scope,
    key: (body.key as string).toLowerCase(),
    maxPerInterval: nullableInt('maxPerInterval', body.maxPerInterval),
    intervalSeconds: body.intervalSeconds === undefined ? 60 : intIn('intervalSeconds', body.intervalSeconds, 1, 86_400),
    maxRunning: nullableInt('maxRunning', body.maxRunning),
  };
  if (body.scope === 'job_type') limit.key = body.key as string;
  if (limit.maxPerInterval === null && limit.maxRunning === null) throw badRequest('set maxPerInterval, maxRunning or both');
  return limit;
}

export function parseNewClient(event: APIGatewayProxyEvent): { name: string; weight: number } {
  const body = jsonObject(event);
  rejectUnknown('the body', body, ['name', 'weight']);
  if (typeof body.name !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(body.name)) {
    throw badRequest('name must be 1-63 lowercase letters, digits, dot, dash or underscore');
  }
  return { name: body.name, weight: body.weight === undefined ? 1 : intIn('weight', body.weight, 1, 100) };
}
