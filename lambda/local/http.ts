import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';

/**
 * Local stand-in for API Gateway (REST, proxy integration): turns HTTP
 * requests into the same proxy events the Lambda receives — headers and
 * multi-value headers, query string, every body base64-encoded (the stack sets
 * binaryMediaTypes to every type, so text reaches the handler as the bytes the
 * client sent), request ids — and the handler's result back into an HTTP response.
 */

export type ProxyHandler = (event: APIGatewayProxyEvent, context?: Context) => Promise<APIGatewayProxyResult>;

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

/** Names to values, with names as data: `constructor` or `__proto__` is a name like any other. */
function collect(pairs: Iterable<[string, string]>): { last: Record<string, string>; all: Record<string, string[]> } {
  const last = new Map<string, string>();
  const all = new Map<string, string[]>();
  for (const [name, value] of pairs) {
    last.set(name, value);
    const values = all.get(name);
    if (values) values.push(value);
    else all.set(name, [value]);
  }
  return { last: Object.fromEntries(last), all: Object.fromEntries(all) };
}

function* headerPairs(req: IncomingMessage): Generator<[string, string]> {
  for (let i = 0; i < req.rawHeaders.length; i += 2) yield [req.rawHeaders[i]!, req.rawHeaders[i + 1]!];
}

export function toProxyEvent(req: IncomingMessage, body: Buffer, stage = 'local'): APIGatewayProxyEvent {
  // The request target's path as sent: `new URL('//admin/stats', base)` would
  // read `admin` as a host, and dot segments would be resolved; the handler
  // refuses such paths instead, as it does behind API Gateway.
  const target = req.url ?? '/';
  const queryStart = target.indexOf('?');
  const path = queryStart === -1 ? target : target.slice(0, queryStart);
  const headers = collect(headerPairs(req));
  const query = collect(new URLSearchParams(queryStart === -1 ? '' : target.slice(queryStart + 1)));
  const requestId = randomUUID();
  const traceId = `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${requestId.replace(/-/g, '').slice(0, 24)}`;
  if (!Object.keys(headers.last).some((name) => name.toLowerCase() === 'x-amzn-trace-id')) {
    headers.last['X-Amzn-Trace-Id'] = traceId;
    headers.all['X-Amzn-Trace-Id'] = [traceId];
  }
  return {
    httpMethod: req.method ?? 'GET',
    path,
    resource: path,
    headers: headers.last,
    multiValueHeaders: headers.all,
    queryStringParameters: Object.keys(query.last).length ? query.last : null,
    multiValueQueryStringParameters: Object.keys(query.all).length ? query.all : null,
    pathParameters: null,
    stageVariables: null,
    body: body.length === 0 ? null : body.toString('base64'),
    isBase64Encoded: body.length > 0,
    requestContext: {
      requestId,
      extendedRequestId: requestId,
      stage,
      path: `/${stage}${path}`,
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
    })().catch((err: unknown) => {
      // The handler answers every error itself; reaching here is a bug, so it is said loudly.
      console.error(`local API adapter: the handler threw: ${(err as Error)?.stack ?? String(err)}`);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ type: 'https://summary-jobs.dev/problems/bad-gateway', title: 'Bad gateway', status: 502, detail: 'the handler failed' }));
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
