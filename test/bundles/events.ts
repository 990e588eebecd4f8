import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, ScheduledEvent } from 'aws-lambda';

export interface ApiRequest {
  method: string;
  /** The resource as API Gateway names it, e.g. /jobs/{id}. */
  resource: string;
  path: string;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  body?: Buffer;
  stage?: string;
}

/**
 * An API Gateway REST proxy event as the stack's API sends it: `*\/*` is a
 * binary media type, so every body arrives base64-encoded with
 * isBase64Encoded true; headers in both single and multi-value form.
 */
export function apiGatewayEvent(request: ApiRequest): APIGatewayProxyEvent {
  const stage = request.stage ?? 'prod';
  const requestId = randomUUID();
  const headers: Record<string, string> = {
    Host: 'abcdefghij.execute-api.us-east-1.amazonaws.com',
    'User-Agent': 'bundles-test/1.0',
    'X-Amzn-Trace-Id': `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${requestId.replace(/-/g, '').slice(0, 24)}`,
    'X-Forwarded-For': '203.0.113.9',
    'X-Forwarded-Port': '443',
    'X-Forwarded-Proto': 'https',
    ...(request.body ? { 'Content-Length': String(request.body.length) } : {}),
    ...request.headers,
  };
  const names = [...request.resource.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  const values = new RegExp(`^${request.resource.replace(/\{[^}]+\}/g, '([^/]+)')}$`).exec(request.path)?.slice(1) ?? [];
  const pathParameters = names.length ? Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(values[i] ?? '')])) : null;
  const query = request.query && Object.keys(request.query).length ? request.query : null;
  return {
    resource: request.resource,
    path: request.path,
    httpMethod: request.method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: query,
    multiValueQueryStringParameters: query ? Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]])) : null,
    pathParameters,
    stageVariables: null,
    requestContext: {
      resourceId: 'abc123',
      resourcePath: request.resource,
      httpMethod: request.method,
      extendedRequestId: `${requestId.slice(0, 16)}=`,
      requestTime: new Date().toUTCString(),
      path: `/${stage}${request.path}`,
      accountId: '123456789012',
      protocol: 'HTTP/1.1',
      stage,
      domainPrefix: 'abcdefghij',
      requestTimeEpoch: Date.now(),
      requestId,
      identity: { sourceIp: '203.0.113.9', userAgent: 'bundles-test/1.0' },
      domainName: 'abcdefghij.execute-api.us-east-1.amazonaws.com',
      apiId: 'abcdefghij',
    } as unknown as APIGatewayProxyEvent['requestContext'],
    body: request.body ? request.body.toString('base64') : null,
    isBase64Encoded: Boolean(request.body),
  };
}

/** The EventBridge schedule's event. */
export function scheduledEvent(ruleArn: string): ScheduledEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: [ruleArn],
    detail: {},
  };
}

/** The JSON body of a proxy result. */
export function jsonBody<T = Record<string, any>>(result: APIGatewayProxyResult): T {
  const text = result.isBase64Encoded ? Buffer.from(result.body, 'base64').toString('utf8') : result.body;
  return JSON.parse(text) as T;
}
