import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '../lambda/core/clients';
import { processorConfig, type ProcessorConfig } from '../lambda/core/config';
import { JobError } from '../lambda/core/errors';
import { logger } from '../lambda/core/logger';
import { RecordingMetrics } from '../lambda/core/metrics';
import { runProcessor } from '../lambda/core/processor';
import { getJob } from '../lambda/core/queue';
import { createSummarizer, type DocumentInput } from '../lambda/core/summarize';
import { createThreadedSummarizer, type ThreadedSummarizer } from '../lambda/core/summarize-pool';
import { submitUpload } from '../lambda/core/uploads';
import { jobWork } from '../lambda/core/work';
import { createTestDatabase, type TestDatabase } from './support/db';
import { fakeInvocation } from './support/processor';
import { CRASH, SPIN, SYSTEM_FAULT, THROTTLED } from './summarize-pool-work';

const DOCS = join(__dirname, 'fixtures', 'docs');
const FIXTURES: Array<[string, string]> = [
  ['news-article.txt', 'text/plain'],
  ['essay.txt', 'text/plain'],
  ['readme.md', 'text/markdown'],
  ['blog-post.html', 'text/html'],
  ['wetland-survey.pdf', 'application/pdf'],
];
// Read afresh for every call: a pooled summarize takes the Buffer's memory over.
const fixture = (name: string, contentType: string): DocumentInput => ({ content: readFileSync(join(DOCS, name)), contentType, filename: name });
const testDoc = (contentType: string): DocumentInput => ({ content: Buffer.from('test'), contentType });
const WORK_MODULE = join(__dirname, 'summarize-pool-work.ts');

const inThread = createSummarizer({ summarizer: 'extractive', bedrockModelId: 'unused' });
const pools: ThreadedSummarizer[] = [];
function pool(threads: number, workModule?: string): ThreadedSummarizer {
  const p = createThreadedSummarizer({ summarizer: 'extractive', bedrockModelId: 'unused', summarizeThreads: threads }, { workModule });
  pools.push(p);
  return p;
}
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

/** The settled outcome of a promise, and when it settled. */
async function outcome<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown; at: number }> {
  try {
    return { value: await p, at: Date.now() };
  } catch (error) {
    return { error, at: Date.now() };
  }
}

describe('threaded summarizer', () => {
  it('gives the same results as the in-thread summarizer on every fixture', async () => {
    const threaded = pool(2);
    const [inline, pooled] = await Promise.all([
      Promise.all(FIXTURES.map(([name, type]) => inThread.summarize(fixture(name, type), { maxSentences: 3 }))),
      Promise.all(FIXTURES.map(([name, type]) => threaded.summarize(fixture(name, type), { maxSentences: 3 }))),
    ]);
    expect(pooled).toEqual(inline);
    expect(pooled.every((r) => r.sentences.length === 3)).toBe(true);
  });

  it('keeps a permanent error permanent and a retryable one retryable across the thread', async () => {
    const threaded = pool(1);
    const empty = await outcome(threaded.summarize({ content: Buffer.alloc(0), contentType: 'text/plain' }, { maxSentences: 3 }));
    expect(empty.error).toBeInstanceOf(JobError);
    expect(empty.error).toMatchObject({ retryable: false, message: 'document is empty' });
    const badCount = await outcome(threaded.summarize(fixture('essay.txt', 'text/plain'), { maxSentences: 0 }));
    expect(badCount.error).toBeInstanceOf(JobError);
    expect((badCount.error as JobError).retryable).toBe(false);
  });

  it('keeps a system failure and a snooze (with its seconds) what they are across the thread', async () => {
    const threaded = pool(1, WORK_MODULE);
    const fault = await outcome(threaded.summarize({ content: Buffer.from('x'), contentType: SYSTEM_FAULT }, { maxSentences: 3 }));
    expect(fault.error).toBeInstanceOf(JobError);
    expect(fault.error).toMatchObject({ kind: 'system', retryable: false, message: 'a fault of ours, not of the document' });
    expect((fault.error as JobError).clientCaused).toBe(false);
    const throttled = await outcome(threaded.summarize({ content: Buffer.from('x'), contentType: THROTTLED }, { maxSentences: 3 }));
    expect(throttled.error).toMatchObject({ kind: 'snooze', retryable: true, snoozeSeconds: 42 });
  });

  it('moves a Buffer that owns its memory to the thread and copies one cut from the shared pool', async () => {
    const threaded = pool(1);
    const essay = readFileSync(join(DOCS, 'essay.txt'));
    const owned = Buffer.alloc(essay.byteLength, essay);
    expect(owned.byteLength).toBe(owned.buffer.byteLength);
    await threaded.summarize({ content: owned, contentType: 'text/plain' }, { maxSentences: 2 });
    expect(owned.byteLength).toBe(0);

    // Small Buffers share one allocation: it must stay usable by everything else that lives in it.
    const text = 'The first sentence is about bread. The second one is about yeast. The third is about an oven.';
    const neighbour = Buffer.from('a neighbour in the same allocation');
    const shared = Buffer.from(text);
    expect(shared.buffer.byteLength).toBeGreaterThan(shared.byteLength);
    const result = await threaded.summarize({ content: shared, contentType: 'text/plain' }, { maxSentences: 1 });
    expect(result.sentences).toHaveLength(1);
    expect(shared.toString()).toBe(text);
    expect(neighbour.toString()).toBe('a neighbour in the same allocation');
  });

  it('cuts off work that never yields when its signal aborts, with the reason, and leaves the other thread alone', async () => {
    const threaded = pool(2, WORK_MODULE);
    // Both threads started and warm, so timing below is the abort's, not a thread's start-up.
    await Promise.all([1, 2].map(() => threaded.summarize(fixture('essay.txt', 'text/plain'), { maxSentences: 2 })));

    const abort = new AbortController();
    const reason = new Error('job timed out after 300 ms');
    const spinning = outcome(threaded.summarize(testDoc(SPIN), { maxSentences: 2, signal: abort.signal }));
    // The other thread keeps summarizing while the first one spins.
    const others = Array.from({ length: 6 }, () => threaded.summarize(fixture('news-article.txt', 'text/plain'), { maxSentences: 2 }));
    const othersDone = await Promise.all(others);
    expect(othersDone.every((r) => r.sentences.length === 2)).toBe(true);

    const abortedAt = Date.now();
    abort.abort(reason);
    const spun = await spinning;
    expect(spun.error).toBe(reason);
    // Settled by the abort itself, not by the thread's exit (generous bound: a shared, busy machine).
    expect(spun.at - abortedAt).toBeLessThan(1_000);

    // The terminated thread is replaced: two documents at once still get two threads.
    const after = await Promise.all([1, 2].map(() => threaded.summarize(fixture('readme.md', 'text/markdown'), { maxSentences: 1 })));
    expect(after.map((r) => r.sentences.length)).toEqual([1, 1]);
  });

  it('drops a document that waits for a thread when its signal aborts, and never runs it', async () => {
    const threaded = pool(1, WORK_MODULE);
    const busy = new AbortController();
    const spinning = outcome(threaded.summarize(testDoc(SPIN), { maxSentences: 2, signal: busy.signal }));
    const waiting = new AbortController();
    const queued = outcome(threaded.summarize(testDoc(SPIN), { maxSentences: 2, signal: waiting.signal }));
    waiting.abort(new Error('gave up waiting'));
    expect((await queued).error).toEqual(new Error('gave up waiting'));
    busy.abort(new Error('stop spinning'));
    expect((await spinning).error).toEqual(new Error('stop spinning'));
    // Had the dropped document reached the thread, this one would wait behind it forever.
    const next = await threaded.summarize(fixture('essay.txt', 'text/plain'), { maxSentences: 1 });
    expect(next.sentences).toHaveLength(1);
    // Already aborted: rejected at once, no thread involved.
    const already = AbortSignal.abort(new Error('too late'));
    await expect(threaded.summarize(testDoc(SPIN), { maxSentences: 2, signal: already })).rejects.toThrow('too late');
  });

  it('fails the document of a thread that crashes (retryable) and replaces the thread', async () => {
    const threaded = pool(1, WORK_MODULE);
    const crashed = await outcome(threaded.summarize(testDoc(CRASH), { maxSentences: 2 }));
    expect(crashed.error).toBeInstanceOf(Error);
    expect(crashed.error).not.toBeInstanceOf(JobError);
    expect((crashed.error as Error).message).toMatch(/summarize worker thread crashed: the test document crashed its thread/);
    const next = await threaded.summarize(fixture('essay.txt', 'text/plain'), { maxSentences: 2 });
    expect(next.sentences).toHaveLength(2);
  });

  it('rejects what runs and what waits on close, and anything after', async () => {
    const threaded = pool(1, WORK_MODULE);
    const running = outcome(threaded.summarize(testDoc(SPIN), { maxSentences: 2 }));
    const waiting = outcome(threaded.summarize(fixture('essay.txt', 'text/plain'), { maxSentences: 2 }));
    await threaded.close();
    expect(((await running).error as Error).message).toBe('the summarizer pool is closed');
    expect(((await waiting).error as Error).message).toBe('the summarizer pool is closed');
    await expect(threaded.summarize(fixture('essay.txt', 'text/plain'), { maxSentences: 2 })).rejects.toThrow('closed');
  });

  it('summarizes on the calling thread with 0 threads and for Bedrock', async () => {
    const zero = pool(0);
    expect(zero.threads).toBe(0);
    expect(await zero.summarize(fixture('essay.txt', 'text/plain'), { maxSentences: 2 })).toEqual(
      await inThread.summarize(fixture('essay.txt', 'text/plain'), { maxSentences: 2 }),
    );
    const bedrock = createThreadedSummarizer({ summarizer: 'bedrock', bedrockModelId: 'm', summarizeThreads: 4 });
    expect([bedrock.name, bedrock.threads]).toEqual(['bedrock', 0]);
  });

  it('does not keep the process alive once its threads are idle', () => {
    // A process that summarizes one document and never closes the pool must still exit by itself.
    const script = `
      require('tsx/cjs/api').register();
      const { createThreadedSummarizer } = require(${JSON.stringify(join(__dirname, '..', 'lambda', 'core', 'summarize-pool.ts'))});
      const pool = createThreadedSummarizer({ summarizer: 'extractive', bedrockModelId: 'x', summarizeThreads: 2 });
      pool.summarize({ content: Buffer.from('One sentence about bread. Another about yeast and flour.'), contentType: 'text/plain' }, { maxSentences: 1 })
        .then((r) => console.log(JSON.stringify(r.sentences)));
    `;
    const child = spawnSync(process.execPath, ['-e', script], { cwd: join(__dirname, '..'), timeout: 30_000, encoding: 'utf8' });
    expect(child.error).toBeUndefined();
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout.trim())).toHaveLength(1);
  });
});

describe('runProcessor with the threaded summarizer', () => {
  let db: TestDatabase;
  let clientId: string;
  beforeAll(async () => {
    db = await createTestDatabase({ poolMax: 10 });
    clientId = (await createClient(db.pool, 'pool-test')).client.id;
  });
  afterAll(async () => {
    await db.drop();
  });

  function config(overrides: Record<string, string> = {}): ProcessorConfig {
    return processorConfig({
      BATCH_SIZE: '10',
      CONCURRENCY: '4',
      LEASE_SECONDS: '30',
      HEARTBEAT_SECONDS: '5',
      JOB_TIMEOUT_MS: '3000',
      SAFETY_MARGIN_MS: '3500',
      WORKER_ID: 'pool-test',
      SUMMARIZE_THREADS: '2',
      ...overrides,
    });
  }

  const upload = async (doc: DocumentInput, maxAttempts = 3) => {
    const submitted = await submitUpload(db.pool, {
      clientId,
      content: doc.content,
      contentType: doc.contentType,
      filename: doc.filename ?? null,
      priority: 0,
      runAt: null,
      maxAttempts,
      maxSentences: 2,
      dependsOn: [],
      idempotencyKey: null,
      requestHash: 'h',
    });
    if (submitted.kind !== 'created') throw new Error('upload not created');
    return submitted.job.id;
  };

  it('cuts off a CPU-bound job at JOB_TIMEOUT_MS while the other jobs of the invocation complete', async () => {
    const cfg = config();
    const threaded = pool(cfg.summarizeThreads, WORK_MODULE);
    const spinner = await upload(testDoc(SPIN), 1);
    const docs = FIXTURES.slice(0, 4);
    const others = [];
    for (const [name, type] of docs) others.push(await upload(fixture(name, type)));

    const t0 = Date.now();
    const run = await runProcessor(
      { pool: db.pool, config: cfg, logger, metrics: new RecordingMetrics(), work: jobWork(db.pool, threaded, cfg), backoff: { baseSeconds: 0, maxSeconds: 0 } },
      fakeInvocation(60_000),
    );
    const elapsed = Date.now() - t0;

    expect(run).toMatchObject({ completed: 4, failed: 1 });
    const spun = await getJob(db.pool, spinner, clientId);
    expect(spun).toMatchObject({ status: 'failed', attempts: 1 });
    expect(spun!.lastError).toMatch(/timed out after 3000 ms/);
    // The invocation ended with the timeout, not with the spinning thread (which never would).
    expect(elapsed).toBeLessThan(20_000);
    for (const [i, id] of others.entries()) {
      const job = await getJob(db.pool, id, clientId);
      const [name, type] = docs[i]!;
      expect(job!.status).toBe('completed');
      expect(job!.result).toEqual({ ...(await inThread.summarize(fixture(name, type), { maxSentences: 2 })) });
    }
  });

  it('retries the job whose thread crashed and completes the others', async () => {
    const cfg = config();
    const threaded = pool(cfg.summarizeThreads, WORK_MODULE);
    const maxAttempts = 3;
    const crasher = await upload(testDoc(CRASH), maxAttempts);
    const other = await upload(fixture('essay.txt', 'text/plain'));
    const run = await runProcessor(
      { pool: db.pool, config: cfg, logger, metrics: new RecordingMetrics(), work: jobWork(db.pool, threaded, cfg), backoff: { baseSeconds: 0, maxSeconds: 0 } },
      fakeInvocation(60_000),
    );
    expect(run.completed).toBe(1);
    expect(run.retried).toBeGreaterThanOrEqual(1);
    const crashed = (await getJob(db.pool, crasher, clientId))!;
    expect(crashed.lastError).toMatch(/summarize worker thread crashed/);
    // Retried like any transient failure: queued again until its attempts run out (with no backoff
    // the retries may run in this same invocation), never failed for good before that.
    if (crashed.status === 'failed') expect(crashed.attempts).toBe(maxAttempts);
    else expect(crashed).toMatchObject({ status: 'queued' });
    expect((await getJob(db.pool, other, clientId))!.status).toBe('completed');
    // The pool is whole again: two documents at once.
    const after = await Promise.all([1, 2].map(() => threaded.summarize(fixture('readme.md', 'text/markdown'), { maxSentences: 1 })));
    expect(after).toHaveLength(2);
  });
});
