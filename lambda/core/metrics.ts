import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRIC_NAMESPACE, SERVICE_NAME, type MetricName } from './alarm-rules';

/**
 * Where the processor's numbers go. In Lambda: CloudWatch embedded metric
 * format through Powertools Metrics (plain log lines, no API call). In local
 * mode and tests: an in-memory recorder that the local alarm evaluator reads.
 */

export type Unit = 'Count' | 'Milliseconds' | 'Seconds';

export interface MetricPoint {
  name: MetricName;
  value: number;
  unit: Unit;
  at: number;
  /** Facts on-call needs with the number (job id, client, error); not dimensions. */
  context?: Record<string, string>;
}

export interface MetricsSink {
  add(name: MetricName, value: number, unit?: Unit, context?: Record<string, string>): void;
  flush(): void;
}

export class RecordingMetrics implements MetricsSink {
  readonly points: MetricPoint[] = [];
  constructor(private readonly onFlush?: (points: MetricPoint[]) => void) {}
  private pending: MetricPoint[] = [];

  add(name: MetricName, value: number, unit: Unit = 'Count', context?: Record<string, string>): void {
    const point = { name, value, unit, at: Date.now(), ...(context ? { context } : {}) };
    this.points.push(point);
    this.pending.push(point);
  }

  flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.onFlush?.(batch);
  }

  sum(name: MetricName): number {
    return this.points.filter((p) => p.name === name).reduce((s, p) => s + p.value, 0);
  }
}

/**
 * Hands each point on as it is added (local mode: to the alarm evaluator), so
 * an alarm sees a database error or a failed job at once, and keeps nothing:
 * a long-lived process can share one.
 */
export class ForwardingMetrics implements MetricsSink {
  constructor(private readonly forward: (points: MetricPoint[]) => void) {}

  add(name: MetricName, value: number, unit: Unit = 'Count', context?: Record<string, string>): void {
    this.forward([{ name, value, unit, at: Date.now(), ...(context ? { context } : {}) }]);
  }

  flush(): void {}
}

export class PowertoolsMetrics implements MetricsSink {
  private readonly metrics = new Metrics({ namespace: METRIC_NAMESPACE, serviceName: SERVICE_NAME });

  add(name: MetricName, value: number, unit: Unit = 'Count', context?: Record<string, string>): void {
    if (context) {
      // A point with context (a failed job) goes out on its own, so its
      // metadata names exactly that job.
      const single = this.metrics.singleMetric();
      for (const [k, v] of Object.entries(context)) single.addMetadata(k, v);
      single.addMetric(name, MetricUnit[unit], value);
      return;
    }
    this.metrics.addMetric(name, MetricUnit[unit], value);
  }

  flush(): void {
    this.metrics.publishStoredMetrics();
  }
}
