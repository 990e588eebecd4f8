import { Metric } from '../lambda/core/alarm-rules';
import { createClient } from '../lambda/core/clients';
import { processorConfig } from '../lambda/core/config';
import { setRateLimit } from '../lambda/core/limits';
import { logger } from '../lambda/core/logger';
import { ForwardingMetrics, type MetricPoint } from '../lambda/core/metrics';
import { runProcessor, type JobWork } from '../lambda/core/processor';
import { enqueueJobs } from '../lambda/core/queue';
import { createSummarizer } from '../lambda/core/summarize';
import { jobWork } from '../lambda/core/work';
import { AlarmEvaluator, type Alert } from '../lambda/local/alerts';
import { apiEvent, testApi } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/db';
import { fakeInvocation } from './support/processor';

/**
 * What pages, with the real processor against a real database and the local
 * evaluator of the stack's alarm rules: a document the client got wrong is
 * counted and does not page (a system failure does), and a backlog that a rate
 * limit holds back does not look like a processor falling behind.
 */

const MIN = 60_000;

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

/** The evaluator on a clock of its own; points are stamped with that clock, so minutes pass without waiting. */
function alarmsAt(start: number) {
  let now = start;
  const alerts: Alert[] = [];
  const points: MetricPoint[] = [];
  const evaluator = new AlarmEvaluator([(a) => void alerts.push(a)], undefined, () => now);
  const metrics = new ForwardingMetrics((batch) => {
    const stamped = batch.map((p) => ({ ...p, at: now }));
    points.push(...stamped);
    evaluator.record(stamped);
  });
  return { evaluator, alerts, points, metrics, advance: (ms: number) => (now += ms) };
}

const config = processorConfig({ PROCESSOR_INTERVAL_MS: '1000', BATCH_SIZE: '10', CONCURRENCY: '2', RETENTION_DAYS: '0' });
const flush = () => new Promise((r) => setImmediate(r));

it('counts a corrupt PDF as a client error with its client and does not page; a system failure pages', async () => {
  const { client, apiKey } = await createClient(db.pool, 'pdf-client');
  const api = testApi(db.pool);
  const corrupt = Buffer.concat([Buffer.from('%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R'), Buffer.alloc(2000, 0x8f)]);
  const res = await api.call(apiEvent('POST', '/uploads', { headers: { 'x-api-key': apiKey, 'content-type': 'application/pdf' }, body: corrupt }));
  expect(res.statusCode).toBe(202);
  const pdfJob = (res.json as { id: string }).id;

  const t = alarmsAt(Date.UTC(2026, 0, 1, 12, 0, 5));
  const work = jobWork(db.pool, createSummarizer(config), config);
  await runProcessor({ pool: db.pool, config, logger, metrics: t.metrics, work }, fakeInvocation(300_000));
  const job = (await db.pool.query(`SELECT status, last_error FROM summary_jobs WHERE id = $1`, [pdfJob])).rows[0];
  expect(job.status).toBe('failed');

  const clientErrors = t.points.filter((p) => p.name === Metric.JobsFailedClientError);
  expect(clientErrors).toEqual([expect.objectContaining({ value: 1, context: expect.objectContaining({ jobId: pdfJob, clientId: client.id }) })]);
  expect(t.points.filter((p) => p.name === Metric.JobsFailed)).toEqual([]);
  t.advance(MIN);
  t.evaluator.evaluate();
  await flush();
  expect(t.alerts.filter((a) => a.alarm === 'JobFailedForGood')).toEqual([]);
  expect(t.evaluator.firing().map((a) => a.alarm)).not.toContain('JobFailedForGood');

  // The control: a job whose attempts run out on an error of ours pages, with its job id.
  const [system] = await enqueueJobs(db.pool, [{ clientId: client.id, jobType: 'boom', maxAttempts: 1 }]);
  const failing: JobWork = async () => {
    throw new Error('the summarizer lost its model');
  };
  await runProcessor({ pool: db.pool, config, logger, metrics: t.metrics, work: failing }, fakeInvocation(300_000));
  await flush();
  expect(t.alerts.filter((a) => a.alarm === 'JobFailedForGood')).toEqual([
    expect.objectContaining({ state: 'ALARM', jobId: system!.job.id, clientId: client.id }),
  ]);
});

it('does not raise OldestJobTooOld for a backlog that a rate limit holds back', async () => {
  const { client } = await createClient(db.pool, 'limited-client');
  // One start per 10 minutes, and six jobs that have been runnable for 10 minutes.
  await setRateLimit(db.pool, { scope: 'client', key: client.id, maxPerInterval: 1, intervalSeconds: 600, maxRunning: null });
  const enqueued = await enqueueJobs(db.pool, Array.from({ length: 6 }, () => ({ clientId: client.id, jobType: 'quick' })));
  const ids = enqueued.map((e) => e.job.id);
  await db.pool.query(`UPDATE summary_jobs SET created_at = now() - interval '10 minutes', run_at = now() - interval '10 minutes' WHERE id = ANY($1)`, [ids]);

  const t = alarmsAt(Date.UTC(2026, 0, 1, 13, 0, 5));
  const quick: JobWork = async () => ({ ok: true });
  // Four runs, a minute apart on the alarms' clock: more than the alarm's three periods.
  for (let i = 0; i < 4; i++) {
    await runProcessor({ pool: db.pool, config, logger, metrics: t.metrics, work: quick }, fakeInvocation(300_000));
    t.advance(MIN);
  }
  t.evaluator.evaluate();
  await flush();

  const { rows } = await db.pool.query(`SELECT status, count(*)::int AS n FROM summary_jobs WHERE id = ANY($1) GROUP BY status ORDER BY status`, [ids]);
  expect(rows).toEqual([
    { status: 'completed', n: 1 },
    { status: 'queued', n: 5 },
  ]);
  const values = (name: string) => t.points.filter((p) => p.name === name).map((p) => p.value);
  // The held jobs are 10 minutes old, yet the age the alarm reads leaves them out; the non-paging signal counts them.
  expect(Math.max(...values(Metric.OldestJobAgeSeconds))).toBeLessThan(300);
  expect(values(Metric.JobsHeldByRateLimit).slice(-1)).toEqual([5]);
  expect(t.alerts.filter((a) => a.alarm === 'OldestJobTooOld')).toEqual([]);
  expect(t.evaluator.firing()).toEqual([]);
});
