import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { ProblemError, problemBody } from '../core/errors';

export type Headers = Record<string, string>;

/**
 * Every value a header was sent with, whatever its casing (API Gateway keeps the
 * client's). `multiValueHeaders` holds all of them, `headers` only the last; an
 * event without `multiValueHeaders` (an older test event) falls back to `headers`.
 */
export function headerValues(event: Pick<APIGatewayProxyEvent, 'headers' | 'multiValueHeaders'>, name: string): string[] {
  const wanted = name.toLowerCase();
  const values: string[] = [];
  for (const [key, list] of Object.entries(event.multiValueHeaders ?? {})) {
    if (key.toLowerCase() === wanted && Array.isArray(list)) values.push(...list.filter((v): v is string => typeof v === 'string'));
  }
  if (values.length > 0) return values;
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted && typeof value === 'string') values.push(value);
  }
  return values;
}

/** Header lookup that ignores case, as HTTP does. Headers that must be single are checked at the door (routes.ts). */
export function header(event: Pick<APIGatewayProxyEvent, 'headers'> & Partial<Pick<APIGatewayProxyEvent, 'multiValueHeaders'>>, name: string): string | undefined {
  const values = headerValues({ headers: event.headers, multiValueHeaders: event.multiValueHeaders ?? {} }, name);
  return values[values.length - 1];
}

const SECURITY_HEADERS: Headers = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

export function json(statusCode: number, body: unknown, headers: Headers = {}): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...SECURITY_HEADERS, ...headers },
    body: JSON.stringify(body),
  };
}

export function problem(err: ProblemError, instance?: string, extraHeaders: Headers = {}): APIGatewayProxyResult {
  const headers: Headers = { 'content-type': 'application/problem+json', ...SECURITY_HEADERS, ...extraHeaders };
  if (err.status === 401) headers['www-authenticate'] = 'ApiKey header="x-api-key"';
  if (err.status === 405 && Array.isArray(err.extensions.allow)) headers.allow = (err.extensions.allow as string[]).join(', ');
  return { statusCode: err.status, headers, body: JSON.stringify(problemBody(err, instance)) };
}

export const badRequest = (detail: string, type = 'invalid-request') => new ProblemError(400, 'Invalid request', detail, type);
export const notFound = (detail: string) => new ProblemError(404, 'Not found', detail, 'not-found');
export const unsupportedMediaType = (detail: string, type = 'unsupported-media-type') => new ProblemError(415, 'Unsupported media type', detail, type);

// A high surrogate not followed by a low one, or a low one without a high one before it.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether a string is well-formed UTF-16 (no lone surrogate), i.e. encodable as UTF-8. */
export function isWellFormed(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes that must be UTF-8 (JSON bodies): decoded strictly, a 400 naming `what` otherwise. */
export function utf8Text(bytes: Buffer, what: string): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    throw badRequest(`${what} is not valid UTF-8`, 'invalid-text-encoding');
  }
}
