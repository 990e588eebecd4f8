import { appendFileSync } from 'node:fs';
import { ALARM_RULES, type AlarmRule } from '../core/alarm-rules';
import type { MetricPoint } from '../core/metrics';

/**
 * Local stand-in for CloudWatch alarms and SNS: the same ALARM_RULES the stack
 * deploys, evaluated over the metric points the processor records, delivered
 * to a console line, a JSON-lines file and optionally a webhook.
 */

export interface Alert {
  alarm: string;
  state: 'ALARM' | 'OK';
  at: string;
  reason: string;
  description: string;
  jobId?: string;
  clientId?: string;
  error?: string;
}

export type AlertSink = (alert: Alert) => void | Promise<void>;

export function consoleSink(write: (line: string) => void = (l) => process.stderr.write(l + '\n')): AlertSink {
  return (a) => write(`[alert] ${a.state} ${a.alarm}${a.jobId ? ` job=${a.jobId}` : ''}: ${a.reason}`);
}

export function fileSink(path: string): AlertSink {
  return (a) => appendFileSync(path, JSON.stringify(a) + '\n');
}

export function webhookSink(url: string): AlertSink {
  return async (a) => {
    await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(a), signal: AbortSignal.timeout(5000) });
  };
}

function aggregate(rule: AlarmRule, values: number[]): number {
  if (rule.statistic === 'Sum') return values.reduce((a, b) => a + b, 0);
  if (rule.statistic === 'Maximum') return Math.max(...values);
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function breaches(rule: AlarmRule, value: number): boolean {
  switch (rule.comparison) {
    case 'GreaterThanOrEqualToThreshold':
      return value >= rule.threshold;
    case 'GreaterThanThreshold':
      return value > rule.threshold;
    case 'LessThanThreshold':
      return value < rule.threshold;
  }
}

export class AlarmEvaluator {
  private readonly points: MetricPoint[] = [];
  private readonly state = new Map<string, 'ALARM' | 'OK'>();
  private readonly startedAt: number;

  constructor(
    private readonly sinks: AlertSink[],
    private readonly rules: readonly AlarmRule[] = ALARM_RULES,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  private deliver(alert: Alert): void {
    for (const sink of this.sinks) {
      void Promise.resolve()
        .then(() => sink(alert))
        .catch(() => undefined);
    }
  }

  /** New points from a processor run. A point that names a job pages at once with that job. */
  record(points: MetricPoint[]): void {
    this.points.push(...points);
    for (const p of points) {
      if (!p.context?.jobId) continue;
      for (const rule of this.rules.filter((r) => r.metric === p.name && breaches(r, p.value))) {
        this.deliver({
          alarm: rule.name,
          state: 'ALARM',
          at: new Date(p.at).toISOString(),
          reason: `${p.name} = ${p.value} for job ${p.context.jobId}`,
          description: rule.description,
          ...p.context,
        });
      }
    }
    this.evaluate();
  }

  /**
   * Evaluates each rule over its last complete periods, as CloudWatch does
   * (all evaluation periods must breach), and reports state changes. Periods
   * before local mode started are "insufficient data": they never alarm.
   */
  evaluate(): void {
    const now = this.now();
    const horizon = Math.max(...this.rules.map((r) => r.periodSeconds * (r.evaluationPeriods + 1))) * 1000;
    while (this.points.length > 0 && this.points[0]!.at < now - horizon) this.points.shift();

    for (const rule of this.rules) {
      const period = rule.periodSeconds * 1000;
      const lastEnd = Math.floor(now / period) * period;
      const firstStart = lastEnd - rule.evaluationPeriods * period;
      if (firstStart < this.startedAt) continue;
      let allBreach = true;
      let shown = 0;
      for (let start = firstStart; start < lastEnd; start += period) {
        const values = this.points.filter((p) => p.name === rule.metric && p.at >= start && p.at < start + period).map((p) => p.value);
        const breach = values.length === 0 ? rule.treatMissingData === 'breaching' : breaches(rule, aggregate(rule, values));
        if (values.length > 0) shown = aggregate(rule, values);
        allBreach &&= breach;
      }
      const next = allBreach ? 'ALARM' : 'OK';
      const previous = this.state.get(rule.name) ?? 'OK';
      this.state.set(rule.name, next);
      // Per-job alarms have paged already, job by job.
      if (next === previous || (rule.metric === 'JobsFailed' && next === 'ALARM')) continue;
      this.deliver({
        alarm: rule.name,
        state: next,
        at: new Date(now).toISOString(),
        reason: `${rule.metric} ${rule.statistic} ${next === 'ALARM' ? 'breached' : 'back within'} ${rule.comparison} ${rule.threshold} over ${rule.evaluationPeriods} x ${rule.periodSeconds}s (last value ${shown})`,
        description: rule.description,
      });
    }
  }
}
