/**
 * Pickup latency of upload bursts through the synthesized bundles: uploads
 * arrive at one API container with random gaps, the API bundle nudges the
 * processor (at most once per NUDGE_INTERVAL_MS), and the processor bundle
 * runs on each nudge. Reports per round how many async invokes were sent and
 * how long each job waited from upload to start; jobs no run has started
 * within the wait are left for the schedule (up to a minute in AWS).
 * The second round also nudges after every upload, as the code did before the
 * debounce, for a comparison within one run.
 *
 *   npx tsx test/bundles/measure-pickup.ts [uploads per round = 40] [burst length ms = 4000]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { NUDGE_INTERVAL_MS } from '../../lambda/handlers/api';
import { jsonBody, type ApiRequest } from './events';
import { startBundles } from './harness';
import { tlsPostgresUnavailable } from './tls-postgres';

process.env.CDK_VALIDATION = 'false';

const uploads = Number(process.argv[2] ?? 40);
const burstMs = Number(process.argv[3] ?? 4000);

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function main(): Promise<void> {
  const unavailable = tlsPostgresUnavailable();
  if (unavailable) throw new Error(unavailable);
  const b = await startBundles('SummaryJobs-Pickup');
  try {
    await b.lambdas.migrate.invoke({});
    const created = await b.call({ method: 'POST', resource: '/admin/clients', path: '/admin/clients', headers: { 'x-api-key': b.adminKey, 'content-type': 'application/json' }, body: Buffer.from('{"name":"pickup"}') });
    const apiKey = jsonBody(created).apiKey as string;
    const asClient = (r: ApiRequest): ApiRequest => ({ ...r, headers: { 'x-api-key': apiKey, ...r.headers } });
    const processorName = b.functionName(b.assetOf('Processor').logicalId);

    for (const round of ['debounced (this code)', 'a nudge per upload (before)'] as const) {
      const invokesBefore = b.aws.calls.filter((c) => c.operation === 'Invoke').length;
      const ids: string[] = [];
      const gaps = Array.from({ length: uploads }, () => Math.random());
      const scale = burstMs / gaps.reduce((a, g) => a + g, 0);
      for (const gap of gaps) {
        await sleep(gap * scale);
        const text = Buffer.from(`Upload ${ids.length} of the ${round} round. It has two sentences to summarize. And a third one for good measure.`);
        const res = await b.call(asClient({ method: 'POST', resource: '/uploads', path: '/uploads', headers: { 'content-type': 'text/plain' }, body: text }));
        ids.push(jsonBody(res).id as string);
        if (round === 'a nudge per upload (before)') {
          b.asyncRuns.push(b.lambdas.processor.invoke({ source: 'upload', sentAt: Date.now(), claimUntil: Date.now() }));
        }
      }
      await Promise.allSettled(b.asyncRuns);
      await sleep(2000);
      await Promise.allSettled(b.asyncRuns);
      const jobs = await Promise.all(ids.map(async (id) => jsonBody(await b.call(asClient({ method: 'GET', resource: '/jobs/{id}', path: `/jobs/${id}` })))));
      const waits = jobs.filter((j) => j.startedAt).map((j) => Date.parse(j.startedAt) - Date.parse(j.createdAt)).sort((x, y) => x - y);
      const nudges = b.aws.calls.filter((c) => c.operation === 'Invoke' && c.target === processorName).length - invokesBefore;
      const invokes = round === 'debounced (this code)' ? nudges : uploads;
      console.log(
        `${round}: ${uploads} uploads over ${burstMs} ms, ${invokes} processor invokes; ` +
          `started: ${waits.length}, within 1 s: ${waits.filter((w) => w <= 1000).length}, left for the schedule: ${uploads - waits.length}; ` +
          `wait p50 ${percentile(waits, 50)} ms, p90 ${percentile(waits, 90)} ms, max ${waits[waits.length - 1] ?? NaN} ms (NUDGE_INTERVAL_MS ${NUDGE_INTERVAL_MS})`,
      );
      // Drain what is left before the next round, as the schedule would.
      await b.lambdas.processor.invoke({ source: 'aws.events', 'detail-type': 'Scheduled Event' });
    }
  } finally {
    await b.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
