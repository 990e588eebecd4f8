import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the two AWS APIs the functions call: Secrets Manager
 * GetSecretValue and Lambda Invoke. The functions' SDK clients reach it through
 * AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL_LAMBDA. Every request must
 * carry a SigV4 Authorization header of the right shape for its service and
 * region (signed with the fake credentials the functions get); anything else,
 * or any other API, is answered with an error and recorded as unexpected.
 */
export interface RecordedCall {
  service: 'secretsmanager' | 'lambda';
  operation: string;
  target: string;
  /** Lambda: the invocation type; Secrets Manager: undefined. */
  invocationType?: string;
  payload?: unknown;
}

export interface AwsStandIn {
  endpoint: string;
  calls: RecordedCall[];
  unexpected: string[];
  close: () => Promise<void>;
}

export interface AwsStandInOptions {
  region: string;
  accessKeyId: string;
  /** Secret ARN -> SecretString. */
  secrets: Record<string, string>;
  /** Called for an async (Event) invoke after it was accepted, as Lambda queues it. */
  onAsyncInvoke: (functionName: string, payload: unknown) => void;
}

const SIGV4 = (accessKeyId: string, region: string, service: string) =>
  new RegExp(
    `^AWS4-HMAC-SHA256 Credential=${accessKeyId}/\\d{8}/${region}/${service}/aws4_request, ` +
      'SignedHeaders=([a-z0-9-]+;)*host(;[a-z0-9-]+)*, Signature=[0-9a-f]{64}$',
  );

async function bodyOf(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startAwsStandIn(options: AwsStandInOptions): Promise<AwsStandIn> {
  const calls: RecordedCall[] = [];
  const unexpected: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const body = await bodyOf(req);
    const reject = (status: number, why: string) => {
      unexpected.push(`${req.method} ${req.url}: ${why}`);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ message: why }));
    };
    const target = String(req.headers['x-amz-target'] ?? '');
    const service = target.startsWith('secretsmanager.') ? 'secretsmanager' : req.url?.startsWith('/2015-03-31/functions/') ? 'lambda' : undefined;
    if (!service) return reject(400, 'not an API this stand-in serves');
    const authorization = String(req.headers.authorization ?? '');
    if (!SIGV4(options.accessKeyId, options.region, service).test(authorization)) return reject(403, `no valid SigV4 signature: "${authorization}"`);
    if (!/^\d{8}T\d{6}Z$/.test(String(req.headers['x-amz-date'] ?? ''))) return reject(403, 'no x-amz-date');
    if (!req.headers['x-amz-security-token']) return reject(403, 'no x-amz-security-token (session credentials)');

    if (service === 'secretsmanager') {
      if (target !== 'secretsmanager.GetSecretValue') return reject(400, `unexpected Secrets Manager call ${target}`);
      const { SecretId } = JSON.parse(body.toString('utf8')) as { SecretId: string };
      calls.push({ service, operation: 'GetSecretValue', target: SecretId });
      const value = options.secrets[SecretId];
      if (value === undefined) {
        return res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify({ __type: 'ResourceNotFoundException', message: `no secret ${SecretId}` }));
      }
      return res
        .writeHead(200, { 'content-type': 'application/x-amz-json-1.1' })
        .end(JSON.stringify({ ARN: SecretId, Name: SecretId.split(':').pop(), SecretString: value, VersionId: 'v1', VersionStages: ['AWSCURRENT'], CreatedDate: 1.7e9 }));
    }

    const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(req.url ?? '');
    if (!match || req.method !== 'POST') return reject(400, 'unexpected Lambda call');
    const functionName = decodeURIComponent(match[1]!);
    const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    const payload = body.length > 0 ? (JSON.parse(body.toString('utf8')) as unknown) : undefined;
    calls.push({ service, operation: 'Invoke', target: functionName, invocationType, payload });
    if (invocationType !== 'Event') return reject(400, `only async invokes are expected, got ${invocationType}`);
    res.writeHead(202, { 'x-amzn-requestid': `req-${calls.length}` }).end();
    setImmediate(() => options.onAsyncInvoke(functionName, payload));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    unexpected,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
