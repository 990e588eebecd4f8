import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALARM_RULES } from '../lambda/core/alarm-rules';
import type { MetricPoint } from '../lambda/core/metrics';
import { AlarmEvaluator, fileSink, type Alert } from '../lambda/local/alerts';

const MIN = 60_000;

function evaluatorAt(start: number) {
  let now = start;
  const alerts: Alert[] = [];
  const evaluator = new AlarmEvaluator([(a) => void alerts.push(a)], ALARM_RULES, () => now);
  return {
    evaluator,
    alerts,
    advance: (ms: number) => (now += ms),
    point: (name: MetricPoint['name'], value: number, context?: Record<string, string>): MetricPoint => ({ name, value, unit: 'Count', at: now, context }),
  };
}
const flush = () => new Promise((r) => setImmediate(r));

describe('local alarm evaluation', () => {
  it('pages once per job failed for good, with the job id, client and error', async () => {
    const t = evaluatorAt(Date.UTC(2026, 0, 1, 12, 0, 0));
    t.evaluator.record([t.point('JobsFailed', 1, { jobId: 'job-1', clientId: 'c-1', error: 'document is empty' })]);
    await flush();
    expect(t.alerts).toEqual([expect.objectContaining({ alarm: 'JobFailedForGood', state: 'ALARM', jobId: 'job-1', clientId: 'c-1', error: 'document is empty' })]);
  });

  it('raises ProcessorNotRunning after three minutes without a run that reached the database, never for the minutes before start, and clears it', async () => {
    const t = evaluatorAt(Date.UTC(2026, 0, 1, 12, 0, 30));
    for (let i = 0; i < 4; i++) {
      t.evaluator.record([t.point('ProcessorRunsSucceeded', 1)]);
      t.advance(MIN);
    }
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'ProcessorNotRunning')).toEqual([]);
    // Invoked every minute, but every run failed before it reached the database: not running.
    for (let i = 0; i < 3; i++) {
      t.evaluator.record([t.point('ProcessorInvocations', 1), t.point('DatabaseErrors', 1)]);
      t.advance(MIN);
    }
    t.evaluator.evaluate();
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'ProcessorNotRunning').map((a) => a.state)).toEqual(['ALARM']);
    expect(t.evaluator.firing().map((a) => a.alarm)).toEqual(['ProcessorNotRunning']);
    for (let i = 0; i < 4; i++) {
      t.evaluator.record([t.point('ProcessorRunsSucceeded', 1)]);
      t.advance(MIN);
    }
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'ProcessorNotRunning').map((a) => a.state)).toEqual(['ALARM', 'OK']);
  });

  it('alarms on the oldest job age only when every evaluation period breaches', async () => {
    const t = evaluatorAt(Date.UTC(2026, 0, 1, 12, 0, 0));
    const age = (v: number) => ({ ...t.point('OldestJobAgeSeconds', v), unit: 'Seconds' as const });
    for (const v of [400, 100, 400]) {
      t.evaluator.record([age(v), t.point('ProcessorRunsSucceeded', 1)]);
      t.advance(MIN);
    }
    t.evaluator.evaluate();
    expect(t.alerts.filter((a) => a.alarm === 'OldestJobTooOld')).toEqual([]);
    for (const v of [400, 500, 600]) {
      t.evaluator.record([age(v), t.point('ProcessorRunsSucceeded', 1)]);
      t.advance(MIN);
    }
    t.evaluator.evaluate();
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'OldestJobTooOld')).toEqual([expect.objectContaining({ state: 'ALARM' })]);
  });

  it('pages for a system failure, never for a document the client got wrong', async () => {
    const t = evaluatorAt(Date.UTC(2026, 0, 1, 12, 0, 0));
    t.evaluator.record([t.point('JobsFailedClientError', 1, { jobId: 'job-pdf', clientId: 'c-1', error: 'the PDF is corrupt' })]);
    t.advance(MIN);
    t.evaluator.evaluate();
    await flush();
    expect(t.alerts).toEqual([]);
    t.evaluator.record([t.point('JobsFailed', 1, { jobId: 'job-2', clientId: 'c-1', error: 'timed out' })]);
    await flush();
    expect(t.alerts.map((a) => [a.alarm, a.jobId])).toEqual([['JobFailedForGood', 'job-2']]);
    // Signals that must not page have no rule at all, so the stack makes no alarm of them either.
    expect(ALARM_RULES.map((r) => r.metric)).not.toEqual(expect.arrayContaining(['JobsFailedClientError']));
    expect(ALARM_RULES.map((r) => r.metric)).not.toEqual(expect.arrayContaining(['JobsHeldByRateLimit']));
  });

  it('raises StuckJobsReaped for a reap in the first, partial minute after a start, at once', async () => {
    const t = evaluatorAt(Date.UTC(2026, 0, 1, 12, 0, 40));
    t.advance(500);
    t.evaluator.record([t.point('ProcessorRunsSucceeded', 1), t.point('JobsReaped', 2)]);
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'StuckJobsReaped')).toEqual([expect.objectContaining({ state: 'ALARM', reason: expect.stringContaining('last value 2') })]);
    // The next minute has no reap: the alarm clears once that minute is over.
    t.advance(MIN + 30_000);
    t.evaluator.record([t.point('ProcessorRunsSucceeded', 1)]);
    t.advance(MIN);
    t.evaluator.evaluate();
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'StuckJobsReaped').map((a) => a.state)).toEqual(['ALARM', 'OK']);
  });

  it('raises DatabaseErrors at the third error within a minute, not for errors spread out', async () => {
    const t = evaluatorAt(Date.UTC(2026, 0, 1, 12, 0, 0));
    for (let i = 0; i < 4; i++) {
      t.evaluator.record([t.point('DatabaseErrors', 1), t.point('ProcessorRunsSucceeded', 1)]);
      t.advance(40_000);
    }
    t.evaluator.evaluate();
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'DatabaseErrors')).toEqual([]);
    t.advance(MIN);
    t.evaluator.record([t.point('DatabaseErrors', 1)]);
    t.advance(1000);
    t.evaluator.record([t.point('DatabaseErrors', 1)]);
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'DatabaseErrors')).toEqual([]);
    t.advance(1000);
    t.evaluator.record([t.point('DatabaseErrors', 1)]);
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'DatabaseErrors')).toEqual([expect.objectContaining({ state: 'ALARM' })]);
    expect(t.evaluator.firing()).toEqual([expect.objectContaining({ alarm: 'DatabaseErrors', description: expect.stringContaining('503') })]);
  });

  it('writes one JSON object per line to the alerts file', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sj-alerts-')), 'alerts.jsonl');
    const sink = fileSink(file);
    sink({ alarm: 'A', state: 'ALARM', at: 'now', reason: 'r', description: 'd', jobId: 'j1' });
    sink({ alarm: 'B', state: 'OK', at: 'now', reason: 'r', description: 'd' });
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.alarm, l.jobId])).toEqual([['A', 'j1'], ['B', undefined]]);
  });
});
