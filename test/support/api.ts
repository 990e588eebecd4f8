import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { createApiHandler, type ApiDeps } from '../../lambda/api/routes';
import { apiConfig } from '../../lambda/core/config';
import { logger } from '../../lambda/core/logger';

/**
 * Builds API Gateway REST proxy events the way API Gateway does, for handler
 * tests: `headers` with the last value of each header and `multiValueHeaders`
 * with all of them, and (binaryMediaTypes is every type) every body
 * base64-encoded as the bytes the client sent. `base64: false` sends a text body
 * as a plain string, as a gateway without binary media types would.
 */
export function apiEvent(
  method: string,
  path: string,
  opts: {
    headers?: Record<string, string>;
    /** Headers sent more than once, all values in order. */
    repeatedHeaders?: Record<string, string[]>;
    query?: Record<string, string>;
    body?: string | Buffer | object;
    base64?: boolean;
  } = {},
): APIGatewayProxyEvent {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let bytes: Buffer | null = null;
  if (Buffer.isBuffer(opts.body)) bytes = opts.body;
  else if (typeof opts.body === 'string') bytes = Buffer.from(opts.body, 'utf8');
  else if (opts.body !== undefined) {
    bytes = Buffer.from(JSON.stringify(opts.body), 'utf8');
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  }
  const plain = opts.base64 === false && typeof opts.body !== 'object';
  const multiValueHeaders: Record<string, string[]> = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
  for (const [name, values] of Object.entries(opts.repeatedHeaders ?? {})) {
    multiValueHeaders[name] = values;
    headers[name] = values[values.length - 1]!;
  }
  const query = opts.query ?? null;
  return {
    httpMethod: method,
    path,
    resource: path,
    headers,
    multiValueHeaders,
    queryStringParameters: query,
    multiValueQueryStringParameters: query ? Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]])) : null,
    pathParameters: null,
    stageVariables: null,
    body: bytes === null || bytes.length === 0 ? null : plain ? (opts.body as string) : bytes.toString('base64'),
    isBase64Encoded: bytes !== null && bytes.length > 0 && !plain,
    requestContext: { requestId: randomUUID(), path: `/prod${path}`, httpMethod: method } as APIGatewayProxyEvent['requestContext'],
  };
}

export const ADMIN_KEY = 'admin-test-key-0123456789';

export function testApi(pool: Pool, overrides: Partial<ApiDeps> = {}) {
  const nudges: number[] = [];
  const handler = createApiHandler({
    pool: async () => pool,
    adminKey: async () => ADMIN_KEY,
    nudge: async () => {
      nudges.push(Date.now());
    },
    logger,
    config: apiConfig({ MAX_UPLOAD_BYTES: String(64 * 1024) }),
    ...overrides,
  });
  const call = async (event: APIGatewayProxyEvent) => {
    const res: APIGatewayProxyResult = await handler(event);
    return { ...res, json: res.body ? JSON.parse(res.body) : undefined };
  };
  return { handler, call, nudges };
}
