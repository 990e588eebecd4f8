import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { createApiHandler, type ApiDeps } from '../../lambda/api/routes';
import { apiConfig } from '../../lambda/core/config';
import { logger } from '../../lambda/core/logger';

/** Builds API Gateway REST proxy events the way API Gateway does, for handler tests. */
export function apiEvent(
  method: string,
  path: string,
  opts: {
    headers?: Record<string, string>;
    query?: Record<string, string>;
    body?: string | Buffer | object;
    base64?: boolean;
  } = {},
): APIGatewayProxyEvent {
  let body: string | null = null;
  let isBase64Encoded = false;
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (Buffer.isBuffer(opts.body)) {
    body = opts.body.toString('base64');
    isBase64Encoded = true;
  } else if (typeof opts.body === 'string') {
    body = opts.base64 ? Buffer.from(opts.body).toString('base64') : opts.body;
    isBase64Encoded = Boolean(opts.base64);
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['Content-Type'] ??= 'application/json';
  }
  return {
    httpMethod: method,
    path,
    resource: path,
    headers,
    multiValueHeaders: {},
    queryStringParameters: opts.query ?? null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body,
    isBase64Encoded,
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
