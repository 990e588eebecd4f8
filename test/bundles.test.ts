import type { APIGatewayProxyResult } from 'aws-lambda';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NUDGE_INTERVAL_MS } from '../lambda/handlers/api';
import { LARGEST_BODY_THE_LAMBDA_SEES, MAX_DOCUMENT_BYTES } from '../lib/api';
import { SUMMARIZE_WORKER_ENTRY } from '../lib/processor';
import { apiGatewayEvent, jsonBody, scheduledEvent, type ApiRequest } from './bundles/events';
import { REGION, startBundles, type Bundles } from './bundles/harness';
import { filesOf } from './bundles/synth';
import { tlsPostgresUnavailable } from './bundles/tls-postgres';

/*
 * The synthesized bundles, run as Lambda runs them: `cdk synth` with bundling
 * on, each service function's asset folder and handler taken from the
 * template, copied read-only, loaded in a process of its own by a runtime
 * stand-in (as a non-root user where the test runs as root), with the
 * template's environment where every reference is replaced by a local
 * stand-in: a PostgreSQL that requires TLS (the RDS Proxy), and an HTTP
 * stand-in for Secrets Manager and Lambda Invoke that checks SigV4.
 */

process.env.CDK_VALIDATION = 'false';

const STACK = 'SummaryJobs-Bundles';
const FIVE_MB = 5_000_000;
const LAMBDA_SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024;

const unavailable = tlsPostgresUnavailable();
if (unavailable) console.warn(`bundles test skipped: ${unavailable}`);
const describeIfPossible = unavailable ? describe.skip : describe;

const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', 'docs', name));

describeIfPossible('the synthesized bundles, run as Lambda runs them', () => {
  let bundles: Bundles;
  // Shorthands for what the tests below use.
  let stack: Bundles['stack'];
  let db: Bundles['db'];
  let aws: Bundles['aws'];
  let lambdas: Bundles['lambdas'];
  let ADMIN_KEY: string;
  let assetOf: Bundles['assetOf'];
  let functionName: Bundles['functionName'];

  beforeAll(async () => {
    bundles = await startBundles(STACK);
    ({ stack, db, aws, lambdas, assetOf, functionName } = bundles);
    ADMIN_KEY = bundles.adminKey;
  }, 120_000);

  afterAll(async () => {
    await bundles?.stop();
  });

  const call = (request: ApiRequest) => bundles.call(request);
  let apiKey: string;
  const asClient = (request: ApiRequest): ApiRequest => ({ ...request, headers: { 'x-api-key': apiKey, ...request.headers } });
  const jobOf = async (id: string) => jsonBody(await call(asClient({ method: 'GET', resource: '/jobs/{id}', path: `/jobs/${id}` })));

  describe('assets', () => {
    it('are within 5 MB unzipped each, with no native binaries (sizes printed)', () => {
      const report = stack.functions.map((fn) => {
        const files = filesOf(fn.assetDir);
        const total = files.reduce((sum, f) => sum + f.bytes, 0);
        return { fn, files, total };
      });
      console.log(
        [`synth with bundling: ${stack.synthMs} ms`]
          .concat(report.map(({ fn, files, total }) => `${fn.logicalId}: ${(total / 1e6).toFixed(2)} MB unzipped — ${files.map((f) => `${f.path} ${(f.bytes / 1024).toFixed(0)} KB`).join(', ')}`))
          .join('\n'),
      );
      expect(report).toHaveLength(3);
      for (const { fn, files, total } of report) {
        expect({ fn: fn.logicalId, total: total <= FIVE_MB }).toEqual({ fn: fn.logicalId, total: true });
        expect(files.filter((f) => f.path.endsWith('.node'))).toEqual([]);
      }
    });

    it('give the processor the PDF reader, and the summarize worker once its source exists, beside index.js', () => {
      const dir = assetOf('Processor').assetDir;
      expect(existsSync(join(dir, 'unpdf', 'index.mjs')) && existsSync(join(dir, 'unpdf', 'pdfjs.mjs'))).toBe(true);
      expect(existsSync(join(dir, 'summarize-worker.js'))).toBe(existsSync(SUMMARIZE_WORKER_ENTRY));
    });

    it('carry the migrations inside the migrate bundle, where MIGRATIONS_DIR points', () => {
      const fn = assetOf('Migrations');
      expect(fn.environment.MIGRATIONS_DIR).toBe('/var/task/migrations');
      expect(filesOf(join(fn.assetDir, 'migrations')).some((f) => f.path.endsWith('.sql'))).toBe(true);
    });

    it('load in each runtime as non-root from a read-only task root', () => {
      for (const l of Object.values(lambdas)) expect(l.initMs).toBeLessThan(10_000);
    });
  });

  it('talk to a database that refuses connections without TLS', async () => {
    const { Client } = await import('pg');
    const plain = new Client({ host: '127.0.0.1', port: db.port, user: db.user, password: db.password, database: db.database, ssl: false });
    await expect(plain.connect()).rejects.toThrow(/pg_hba.conf (rejects|has no entry)|no encryption/);
  });

  it('migrate: the Trigger\'s invoke (no payload) applies every migration, a second one applies none', async () => {
    const first = await lambdas.migrate.invoke<{ applied: string[] }>({});
    expect(first.applied.length).toBeGreaterThan(0);
    const again = await lambdas.migrate.invoke<{ applied: string[] }>({});
    expect(again.applied).toEqual([]);
  });

  it('API: creates a client with the admin key read from Secrets Manager', async () => {
    const denied = await call({ method: 'POST', resource: '/admin/clients', path: '/admin/clients', headers: { 'x-api-key': 'wrong', 'content-type': 'application/json' }, body: Buffer.from('{"name":"bundles"}') });
    expect(denied.statusCode).toBe(401);
    const created = await call({
      method: 'POST',
      resource: '/admin/clients',
      path: '/admin/clients',
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
      body: Buffer.from('{"name":"bundles"}'),
    });
    expect(created.statusCode).toBe(201);
    apiKey = jsonBody(created).apiKey as string;
    expect(apiKey).toMatch(/^sj_/);
  });

  let pdfJobId: string;
  let textJobId: string;

  it('API: a PDF upload is queued and nudges the processor once; text uploaded within the nudge interval sends no second nudge', async () => {
    const invokesBefore = aws.calls.filter((c) => c.operation === 'Invoke').length;
    const pdf = await call(asClient({ method: 'POST', resource: '/uploads', path: '/uploads', headers: { 'content-type': 'application/pdf' }, query: { filename: 'wetland-survey.pdf' }, body: fixture('wetland-survey.pdf') }));
    expect(pdf.statusCode).toBe(202);
    pdfJobId = jsonBody(pdf).id as string;
    // ISO-8859-1 bytes, as API Gateway hands them over with */* binary: the charset parameter is honoured.
    const latin1 = Buffer.from(
      'The café on the corner serves crème brûlée every morning. Its owner, Zoë, opened it in the spring. ' +
        'Regulars come for the crème brûlée and stay for the conversation. The café closes at noon on Sundays.',
      'latin1',
    );
    const text = await call(asClient({ method: 'POST', resource: '/uploads', path: '/uploads', headers: { 'content-type': 'text/plain; charset=ISO-8859-1' }, body: latin1 }));
    const textAnsweredAt = Date.now();
    expect(text.statusCode).toBe(202);
    textJobId = jsonBody(text).id as string;

    const invokes = aws.calls.filter((c) => c.operation === 'Invoke').slice(invokesBefore);
    expect(invokes[0]).toMatchObject({ target: functionName(assetOf('Processor').logicalId), invocationType: 'Event', payload: { source: 'upload' } });
    const nudge = invokes[0]!.payload as { sentAt: number; claimUntil: number };
    expect(nudge.claimUntil - nudge.sentAt).toBe(NUDGE_INTERVAL_MS);
    // Same machine, same clock: when the text upload was answered inside the interval, it sent no nudge of its own.
    if (textAnsweredAt - nudge.sentAt < NUDGE_INTERVAL_MS) expect(invokes).toHaveLength(1);
    else expect(invokes.length).toBeLessThanOrEqual(2);
  });

  it('processor: the nudged run completes the PDF, a scheduled run completes whatever is left', async () => {
    await Promise.all(bundles.asyncRuns);
    const ruleId = Object.keys(stack.resources).find((id) => stack.resources[id]!.Type === 'AWS::Events::Rule')!;
    const scheduled = await lambdas.processor.invoke<Record<string, unknown>>(scheduledEvent(`arn:aws:events:${REGION}:123456789012:rule/${ruleId}`));
    bundles.processorResults.push(scheduled);
    const completed = bundles.processorResults.reduce((sum, r) => sum + Number(r.completed ?? 0), 0);
    expect(completed).toBe(2);

    const pdfJob = await jobOf(pdfJobId);
    expect(pdfJob).toMatchObject({ status: 'completed', contentType: 'application/pdf', filename: 'wetland-survey.pdf' });
    expect(JSON.stringify(pdfJob.result)).toMatch(/heron|wetland/i);
  });

  it('API: GET /jobs/{id} answers the completed text job, its charset intact', async () => {
    const textJob = await jobOf(textJobId);
    expect(textJob.status).toBe('completed');
    expect(JSON.stringify(textJob.result)).toContain('crème brûlée');
  });

  it('API: a body over the upload limit gets the Lambda\'s own 413 problem, up to the largest body whose event Lambda accepts', async () => {
    const event = apiGatewayEvent(asClient({ method: 'POST', resource: '/uploads', path: '/uploads', headers: { 'content-type': 'application/pdf' }, body: Buffer.alloc(LARGEST_BODY_THE_LAMBDA_SEES, 0x25) }));
    expect(Buffer.byteLength(JSON.stringify(event))).toBeLessThanOrEqual(LAMBDA_SYNC_PAYLOAD_LIMIT);
    const result = await lambdas.api.invoke<APIGatewayProxyResult>(event);
    expect(result.statusCode).toBe(413);
    expect(result.headers?.['content-type'] ?? result.headers?.['Content-Type']).toMatch(/application\/problem\+json/);
    expect(jsonBody(result)).toMatchObject({ status: 413, limit: MAX_DOCUMENT_BYTES });
  });

  it('signed every AWS call with SigV4 and called nothing but GetSecretValue and an async Invoke', () => {
    expect(aws.unexpected).toEqual([]);
    expect(new Set(aws.calls.map((c) => c.operation))).toEqual(new Set(['GetSecretValue', 'Invoke']));
  });

  it('wrote neither the database password nor the admin key to any log', () => {
    for (const l of Object.values(lambdas)) {
      expect(l.logs()).not.toContain(db.password);
      expect(l.logs()).not.toContain(ADMIN_KEY);
    }
    expect(lambdas.processor.logs()).toMatch(/job completed/);
  });
});

// A file whose every test was skipped still says why, in the test list.
if (unavailable) it.skip(`bundles test: ${unavailable}`, () => undefined);
