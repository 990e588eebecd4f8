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

  it('raises ProcessorNotRunning after three silent minutes, never for the minutes before start, and clears it', async () => {
    const t = evaluatorAt(Date.UTC(2026, 0, 1, 12, 0, 30));
    for (let i = 0; i < 4; i++) {
      t.evaluator.record([t.point('ProcessorInvocations', 1)]);
      t.advance(MIN);
    }
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'ProcessorNotRunning')).toEqual([]);
    t.advance(3 * MIN);
    t.evaluator.evaluate();
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'ProcessorNotRunning').map((a) => a.state)).toEqual(['ALARM']);
    for (let i = 0; i < 4; i++) {
      t.evaluator.record([t.point('ProcessorInvocations', 1)]);
      t.advance(MIN);
    }
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'ProcessorNotRunning').map((a) => a.state)).toEqual(['ALARM', 'OK']);
  });

  it('alarms on the oldest job age only when every evaluation period breaches', async () => {
    const t = evaluatorAt(Date.UTC(2026, 0, 1, 12, 0, 0));
    const age = (v: number) => ({ ...t.point('OldestJobAgeSeconds', v), unit: 'Seconds' as const });
    for (const v of [400, 100, 400]) {
      t.evaluator.record([age(v), t.point('ProcessorInvocations', 1)]);
      t.advance(MIN);
    }
    t.evaluator.evaluate();
    expect(t.alerts.filter((a) => a.alarm === 'OldestJobTooOld')).toEqual([]);
    for (const v of [400, 500, 600]) {
      t.evaluator.record([age(v), t.point('ProcessorInvocations', 1)]);
      t.advance(MIN);
    }
    t.evaluator.evaluate();
    await flush();
    expect(t.alerts.filter((a) => a.alarm === 'OldestJobTooOld')).toEqual([expect.objectContaining({ state: 'ALARM' })]);
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
