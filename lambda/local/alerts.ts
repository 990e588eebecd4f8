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

/** Points are kept as per-metric sums over buckets of this length: memory and evaluation cost follow time, not traffic. */
const BUCKET_MS = 10_000;
/** record() evaluates at most this often; the timer in local mode covers the rest. */
const EVALUATE_EVERY_MS = 1_000;

interface Bucket {
  sum: number;
  max: number;
  count: number;
  /** Points that already paged on their own (a job's failure, with its job id). */
  paged: number;
}

function aggregate(rule: AlarmRule, b: Bucket): number {
  if (rule.statistic === 'Sum') return b.sum;
  if (rule.statistic === 'Maximum') return b.max;
  return b.sum / b.count;
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

/** A sum or maximum above a threshold can only grow within its period: a period still running that breaches already will breach at its end. */
const settlesEarly = (rule: AlarmRule) => rule.statistic !== 'Average' && rule.comparison !== 'LessThanThreshold';

export interface AlarmState {
  alarm: string;
  state: 'ALARM' | 'OK';
  /** When the alarm entered this state (ISO 8601). */
  since: string;
  reason: string;
  description: string;
}

export class AlarmEvaluator {
  private readonly buckets = new Map<string, Map<number, Bucket>>();
  private readonly state = new Map<string, AlarmState>();
  private readonly startedAt: number;
  private lastEvaluated = -Infinity;

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

  /** New metric points. A point that names a job pages at once, with that job. */
  record(points: MetricPoint[]): void {
    for (const p of points) {
      const pagedAlone = Boolean(p.context?.jobId) && this.rules.some((r) => r.metric === p.name && breaches(r, p.value));
      const key = Math.floor(p.at / BUCKET_MS) * BUCKET_MS;
      let series = this.buckets.get(p.name);
      if (!series) this.buckets.set(p.name, (series = new Map()));
      const b = series.get(key);
      if (b) {
        b.sum += p.value;
        b.max = Math.max(b.max, p.value);
        b.count += 1;
        b.paged += pagedAlone ? 1 : 0;
      } else {
        series.set(key, { sum: p.value, max: p.value, count: 1, paged: pagedAlone ? 1 : 0 });
      }
      if (!pagedAlone) continue;
      for (const rule of this.rules.filter((r) => r.metric === p.name && breaches(r, p.value))) {
        this.deliver({
          alarm: rule.name,
          state: 'ALARM',
          at: new Date(p.at).toISOString(),
          reason: `${p.name} = ${p.value} for job ${p.context!.jobId}`,
          description: rule.description,
          ...p.context,
        });
      }
    }
    if (this.now() - this.lastEvaluated >= EVALUATE_EVERY_MS) this.evaluate();
  }

  /** The alarms in ALARM now, for the dashboard. */
  firing(): AlarmState[] {
    return [...this.state.values()].filter((s) => s.state === 'ALARM');
  }

  /** One period's points merged; undefined when there were none. */
  private period(metric: string, start: number, length: number): Bucket | undefined {
    const series = this.buckets.get(metric);
    if (!series) return undefined;
    let merged: Bucket | undefined;
    for (let at = start; at < start + length; at += BUCKET_MS) {
      const b = series.get(at);
      if (!b) continue;
      merged = merged
        ? { sum: merged.sum + b.sum, max: Math.max(merged.max, b.max), count: merged.count + b.count, paged: merged.paged + b.paged }
        : { ...b };
    }
    return merged;
  }

  /**
   * Evaluates each rule as CloudWatch does: the alarm fires when all its last
   * evaluation periods breach. A period with no points counts per the rule's
   * treatMissingData, except before local mode started, where silence proves
   * nothing ("insufficient data", never breaching); a period that began before
   * the start is evaluated on the points it has, so a reap right after a restart
   * still pages. A sum or maximum that already breaches in the running period
   * alarms at once, as CloudWatch does when the data arrives.
   */
  evaluate(): void {
    const now = this.now();
    this.lastEvaluated = now;
    const horizon = Math.max(...this.rules.map((r) => r.periodSeconds * (r.evaluationPeriods + 1))) * 1000;
    for (const series of this.buckets.values()) {
      for (const at of series.keys()) if (at < now - horizon) series.delete(at);
    }

    for (const rule of this.rules) {
      const length = rule.periodSeconds * 1000;
      const current = Math.floor(now / length) * length;
      const verdict = (start: number) => {
        const b = this.period(rule.metric, start, length);
        // Silence before the start proves nothing ("insufficient data").
        if (!b) return { breach: start >= this.startedAt && rule.treatMissingData === 'breaching', b };
        return { breach: breaches(rule, aggregate(rule, b)), b };
      };
      const windowEndingAt = (end: number) => Array.from({ length: rule.evaluationPeriods }, (_, i) => verdict(end - (rule.evaluationPeriods - i) * length));
      const complete = windowEndingAt(current);
      const running = settlesEarly(rule) ? windowEndingAt(current + length) : [];
      const window =
        running.length > 0 && running.every((v) => v.breach) ? running : complete.every((v) => v.breach) ? complete : null;
      const next = window ? 'ALARM' : 'OK';
      const previous = this.state.get(rule.name);
      if (previous?.state === next || (!previous && next === 'OK')) {
        if (!previous) this.state.set(rule.name, { alarm: rule.name, state: 'OK', since: new Date(now).toISOString(), reason: 'no breach', description: rule.description });
        continue;
      }
      const shown = (window ?? complete).map((v) => (v.b ? aggregate(rule, v.b) : null)).filter((v) => v !== null).pop() ?? 'none';
      const reason = `${rule.metric} ${rule.statistic} ${next === 'ALARM' ? 'breached' : 'back within'} ${rule.comparison} ${rule.threshold} over ${rule.evaluationPeriods} x ${rule.periodSeconds}s (last value ${shown})`;
      this.state.set(rule.name, { alarm: rule.name, state: next, since: new Date(now).toISOString(), reason, description: rule.description });
      // A breach made only of points that paged job by job has paged already.
      const pagedAlready = window !== null && window.some((v) => v.b) && window.every((v) => !v.b || v.b.paged === v.b.count);
      if (next === 'ALARM' && pagedAlready) continue;
      this.deliver({ alarm: rule.name, state: next, at: new Date(now).toISOString(), reason, description: rule.description });
    }
  }
}
