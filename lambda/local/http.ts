import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';

/**
 * Local stand-in for API Gateway (REST, proxy integration): turns HTTP
 * requests into the same proxy events the Lambda receives — headers, query
 * string, base64 body for binary types, request ids — and the handler's
 * result back into an HTTP response.
 */

export type ProxyHandler = (event: APIGatewayProxyEvent, context?: Context) => Promise<APIGatewayProxyResult>;

// As the stack configures binaryMediaTypes: these arrive base64-encoded.
const BINARY_TYPES = ['application/pdf', 'application/octet-stream'];
// API Gateway's own payload limit.
const MAX_BODY_BYTES = 10 * 1024 * 1024;

async function readBody(req: IncomingMessage): Promise<Buffer | 'too_large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return 'too_large';
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function toProxyEvent(req: IncomingMessage, body: Buffer, stage = 'local'): APIGatewayProxyEvent {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const value = req.rawHeaders[i + 1]!;
    headers[name] = value;
    (multiValueHeaders[name] ??= []).push(value);
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) {
    query[k] = v;
    (multiQuery[k] ??= []).push(v);
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const binary = BINARY_TYPES.includes(type);
  const requestId = randomUUID();
  headers['X-Amzn-Trace-Id'] ??= `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${requestId.replace(/-/g, '').slice(0, 24)}`;
  return {
    httpMethod: req.method ?? 'GET',
    path: url.pathname,
    resource: url.pathname,
    headers,
    multiValueHeaders,
    queryStringParameters: Object.keys(query).length ? query : null,
    multiValueQueryStringParameters: Object.keys(multiQuery).length ? multiQuery : null,
    pathParameters: null,
    stageVariables: null,
    body: body.length === 0 ? null : binary ? body.toString('base64') : body.toString('utf8'),
    isBase64Encoded: binary && body.length > 0,
    requestContext: {
      requestId,
      extendedRequestId: requestId,
      stage,
      path: `/${stage}${url.pathname}`,
      httpMethod: req.method ?? 'GET',
      requestTimeEpoch: Date.now(),
      identity: { sourceIp: req.socket.remoteAddress ?? '127.0.0.1', userAgent: req.headers['user-agent'] ?? null },
    } as unknown as APIGatewayProxyEvent['requestContext'],
  };
}

export function lambdaContext(functionName: string, timeoutMs: number, requestId: string = randomUUID()): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export interface RunningHttpServer {
  url: string;
  server: Server;
  close: () => Promise<void>;
}

export async function startHttpServer(handler: ProxyHandler, opts: { port: number; host?: string }): Promise<RunningHttpServer> {
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      if (body === 'too_large') {
        res.writeHead(413, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ type: 'https://summary-jobs.dev/problems/payload-too-large', title: 'Payload too large', status: 413, detail: `request bodies are limited to ${MAX_BODY_BYTES} bytes` }));
        return;
      }
      const event = toProxyEvent(req, body);
      const result = await handler(event, lambdaContext('summary-jobs-api', 29_000, event.requestContext.requestId));
      const payload = result.isBase64Encoded ? Buffer.from(result.body, 'base64') : Buffer.from(result.body ?? '', 'utf8');
      res.writeHead(result.statusCode, { ...(result.headers as Record<string, string>), 'content-length': String(payload.length) });
      res.end(payload);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ title: 'Bad gateway', status: 502, detail: 'the handler failed' }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
