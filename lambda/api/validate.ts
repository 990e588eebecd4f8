import type { APIGatewayProxyEvent } from 'aws-lambda';
import { JobError, ProblemError } from '../core/errors';
import { isUuid } from '../core/ids';
import { JOB_STATUSES, type JobStatus } from '../core/queue';
import { isTimeZone } from '../core/recurring';
import { MAX_TEXT_CHARACTERS } from '../core/summarize/limits';
import { decodeText } from '../core/summarize/decode-text';
import { normalizeText } from '../core/summarize/normalize-text';
import { sha256, type UploadRequest } from '../core/uploads';
import { badRequest, header, isWellFormed, unsupportedMediaType, utf8Text } from './http';

/**
 * Request parsing. Everything a client sends is checked here, and every
 * failure is a ProblemError naming the field, so a bad request is a 4xx and
 * never reaches the database.
 */

export const DOCUMENT_TYPES = ['text/plain', 'text/markdown', 'text/html', 'application/pdf'] as const;
export type DocumentType = (typeof DOCUMENT_TYPES)[number];

const MAX_DEPENDENCIES = 500;
const DAY_MS = 24 * 3600 * 1000;
/** How far ahead a job may be scheduled: a year (and the day a leap year adds). */
const MAX_SCHEDULE_AHEAD_MS = 366 * DAY_MS;
/** How far back a runAt may lie: clock skew and a retried request, not a date from another era. */
const MAX_SCHEDULE_BEHIND_MS = DAY_MS;

export interface UploadLimits {
  maxUploadBytes: number;
}

function mediaType(value: string | undefined): string | undefined {
  return value?.split(';')[0]?.trim().toLowerCase() || undefined;
}

/** The charset parameter of a Content-Type, lowercase and unquoted, or undefined. */
function charsetOf(value: string | undefined): string | undefined {
  for (const param of (value ?? '').split(';').slice(1)) {
    const m = param.trim().match(/^charset\s*=\s*"?([^";\s]*)"?$/i);
    if (m) return m[1]!.toLowerCase();
  }
  return undefined;
}

/** The canonical name of a charset the summarizer can decode, or a 415 naming it. */
function supportedCharset(charset: string): string {
  try {
    return new TextDecoder(charset).encoding;
  } catch {
    throw unsupportedMediaType(`charset "${charset.slice(0, 40)}" is not supported; send UTF-8 (or another WHATWG encoding, e.g. iso-8859-1, utf-16le)`, 'unsupported-charset');
  }
}

/** JSON is UTF-8 (RFC 8259): any other declared charset is refused rather than misread. */
function requireUtf8Json(contentType: string | undefined): void {
  const charset = charsetOf(contentType);
  if (charset !== undefined && supportedCharset(charset) !== 'utf-8') {
    throw unsupportedMediaType(`JSON must be UTF-8; charset "${charset.slice(0, 40)}" is not accepted`, 'unsupported-charset');
  }
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

const DATE_TIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-](\d{2}):(\d{2}))$/i;

/**
 * A date-time that names a real instant: every field in its calendar range
 * (Date.parse would turn 2027-02-30 into March 2), no later than a year ahead
 * and no earlier than a day ago (year 0001 would read as a 2,000-year-old job).
 */
function runAtOf(name: string, value: unknown, now: number): Date {
  const m = typeof value === 'string' && value.length <= 40 ? DATE_TIME_RE.exec(value) : null;
  if (!m) throw badRequest(`${name} must be an ISO 8601 date-time with a time zone, e.g. 2026-01-31T09:00:00Z`, 'invalid-date');
  const [year, month, day, hour, minute, second = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((p) => (p === undefined ? undefined : Number(p))) as number[];
  const daysInMonth = month! >= 1 && month! <= 12 ? new Date(Date.UTC(year!, month!, 0)).getUTCDate() : 0;
  const offsetOk = m[9] === undefined || (Number(m[9]) <= 23 && Number(m[10]) <= 59);
  if (day! < 1 || day! > daysInMonth || hour! > 23 || minute! > 59 || second > 59 || !offsetOk) {
    throw badRequest(`${name} is not a real date and time: ${value as string}`, 'invalid-date');
  }
  const t = Date.parse(value as string);
  if (Number.isNaN(t)) throw badRequest(`${name} is not a valid date-time`, 'invalid-date');
  if (t - now > MAX_SCHEDULE_AHEAD_MS) throw badRequest(`${name} may be at most one year ahead`, 'invalid-date');
  if (now - t > MAX_SCHEDULE_BEHIND_MS) throw badRequest(`${name} may be at most one day in the past (omit it to run now)`, 'invalid-date');
  return new Date(t);
}

function filenameOf(value: unknown): string {
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || value.length === 0 || value.length > 255 || /[\u0000-\u001f\u007f]/.test(value) || !isWellFormed(value)) {
    throw badRequest('filename must be a string of 1 to 255 characters without control characters or lone surrogates');
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

/** The first string (key or value) in a parsed JSON value that is not well-formed UTF-16, as a path. */
function illFormedString(value: unknown, path: string): string | null {
  if (typeof value === 'string') return isWellFormed(value) ? null : path;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = illFormedString(value[i], `${path}[${i}]`);
      if (bad) return bad;
    }
  } else if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (!isWellFormed(k)) return `${path} (a key)`;
      const bad = illFormedString(v, `${path}.${k}`);
      if (bad) return bad;
    }
  }
  return null;
}

/**
 * A JSON object body, or a 400 saying what is wrong with it: bytes that are not
 * UTF-8, text that is not JSON, or a string holding a lone surrogate (`"\ud800"`
 * is valid JSON but no valid text, and could not be stored or summarized).
 */
function parseJsonObject(bytes: Buffer): Record<string, unknown> {
  const text = utf8Text(bytes, 'the JSON body');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badRequest('the body is not valid JSON', 'malformed-json');
  }
  if (!isPlainObject(parsed)) throw badRequest('the JSON body must be an object');
  const bad = illFormedString(parsed, 'body');
  if (bad) throw badRequest(`${bad.slice(0, 100)} holds a lone UTF-16 surrogate; strings must be valid Unicode text`, 'invalid-text');
  return parsed;
}

/**
 * Refuses at the door a text document the summarizer would refuse later: a
 * charset it cannot decode (415), bytes that are not text in that charset
 * (400), and text beyond MAX_TEXT_CHARACTERS (413). The decoding and counting
 * are the summarizer's own (decodeText, normalizeText), so the two cannot
 * disagree. For text/plain the count is exact; markdown and HTML lose their
 * markup in extraction, which is too costly to run here, so for them the
 * processor's check stays the only one.
 */
function checkText(document: Buffer, type: DocumentType, charset: string | undefined): void {
  if (type === 'application/pdf') return;
  if (document.length === 0) throw badRequest('the document is empty', 'empty-document');
  let text: string;
  try {
    text = decodeText(document, charset);
  } catch (err) {
    if (err instanceof JobError) throw badRequest(err.message.replace(/^document/, 'the document'), 'invalid-text');
    throw err;
  }
  if (type !== 'text/plain') {
    if (text.trim() === '') throw badRequest('the document is empty', 'empty-document');
    return;
  }
  const characters = normalizeText(text).length;
  if (characters === 0) throw badRequest('the document is empty (nothing but whitespace)', 'empty-document');
  if (characters > MAX_TEXT_CHARACTERS) {
    throw new ProblemError(
      413,
      'Document too long',
      `the document has ${characters} characters of text; the summarizer takes at most ${MAX_TEXT_CHARACTERS}`,
      'text-too-long',
      { limit: MAX_TEXT_CHARACTERS },
    );
  }
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
  const contentTypeHeader = header(event, 'content-type');
  const type = mediaType(contentTypeHeader);
  const declaredCharset = charsetOf(contentTypeHeader);
  const bytes = bodyBytes(event);
  // JSON carries the document inside; allow for its quoting and base64 overhead.
  const envelope = type === 'application/json' ? Math.ceil(limits.maxUploadBytes * 1.4) + 64 * 1024 : limits.maxUploadBytes;
  if (bytes.length > envelope) throw tooLarge(bytes.length, limits.maxUploadBytes);

  let parsed: { document: Buffer; contentType: DocumentType; filename: string | null; options: UploadOptions };
  // The charset the stored bytes are in; null for UTF-8 (the default) and for PDF.
  let charset: string | null = null;
  const query = event.queryStringParameters ?? {};
  if (type === 'application/json') {
    requireUtf8Json(contentTypeHeader);
    if (Object.keys(query).length > 0) throw badRequest('with a JSON body, pass options in the body, not the query string');
    parsed = documentFromJson(bytes, now, limits);
  } else if (type && isDocumentType(type)) {
    if (type !== 'application/pdf' && declaredCharset !== undefined) {
      const canonical = supportedCharset(declaredCharset);
      if (canonical !== 'utf-8') charset = canonical;
    }
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
  if (parsed.document.length === 0) throw badRequest('the document is empty', 'empty-document');
  checkText(parsed.document, parsed.contentType, charset ?? undefined);

  const idempotencyKey = header(event, 'idempotency-key') ?? null;
  if (idempotencyKey !== null && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
    throw badRequest('Idempotency-Key must be 1 to 255 visible ASCII characters', 'invalid-idempotency-key');
  }
  const { options } = parsed;
  const fingerprint = JSON.stringify({
    type: parsed.contentType,
    ...(charset ? { charset } : {}),
    filename: parsed.filename,
    options: { ...options, runAt: options.runAt?.toISOString() ?? null },
    sha: sha256(parsed.document),
  });
  return {
    clientId,
    content: parsed.document,
    contentType: parsed.contentType,
    charset,
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

function jsonObject(event: Pick<APIGatewayProxyEvent, 'body' | 'isBase64Encoded' | 'headers' | 'multiValueHeaders'>): Record<string, unknown> {
  const contentType = header(event, 'content-type');
  if (mediaType(contentType) !== 'application/json') {
    throw new ProblemError(415, 'Unsupported media type', 'send application/json', 'unsupported-media-type');
  }
  requireUtf8Json(contentType);
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
  if (body.timezone !== undefined && (typeof body.timezone !== 'string' || !/^[A-Za-z_+\-/0-9]{1,64}$/.test(body.timezone) || !isTimeZone(body.timezone))) {
    throw badRequest(`timezone must be an IANA time zone name, e.g. Europe/Paris; ${JSON.stringify(String(body.timezone).slice(0, 64))} is not one`, 'invalid-schedule');
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
