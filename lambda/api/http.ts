import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { ProblemError, problemBody } from '../core/errors';

export type Headers = Record<string, string>;

/** Header lookup that ignores case, as HTTP does (API Gateway keeps the client's casing). */
export function header(event: Pick<APIGatewayProxyEvent, 'headers'>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted && value !== undefined && value !== null) return value;
  }
  return undefined;
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

export function problem(err: ProblemError, instance?: string): APIGatewayProxyResult {
  const headers: Headers = { 'content-type': 'application/problem+json', ...SECURITY_HEADERS };
  if (err.status === 401) headers['www-authenticate'] = 'ApiKey header="x-api-key"';
  if (err.status === 405 && Array.isArray(err.extensions.allow)) headers.allow = (err.extensions.allow as string[]).join(', ');
  return { statusCode: err.status, headers, body: JSON.stringify(problemBody(err, instance)) };
}

export const badRequest = (detail: string, type = 'invalid-request') => new ProblemError(400, 'Invalid request', detail, type);
export const notFound = (detail: string) => new ProblemError(404, 'Not found', detail, 'not-found');
