import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { Metric } from '../lambda/core/alarm-rules';
import { appMetric } from './alarms';
import type { Api } from './api';
import type { Processor } from './processor';

export interface DashboardProps {
  readonly api: Api;
  readonly processor: Processor;
}

/** The CloudWatch view: throughput, outcomes, queue depth and age, latency, errors. */
export class Dashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    const minute = Duration.minutes(1);
    const sum = (name: Parameters<typeof appMetric>[0], label: string) => appMetric(name, 'Sum', minute).with({ label });
    const processor = props.processor.function.fn;
    const api = props.api.restApi;

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new cloudwatch.GraphWidget({ title: 'Throughput (jobs/min)', width: 8, left: [sum(Metric.JobsClaimed, 'claimed'), sum(Metric.JobsCompleted, 'completed')] }),
          new cloudwatch.GraphWidget({
            title: 'Outcomes (jobs/min)',
            width: 8,
            stacked: true,
            left: [sum(Metric.JobsCompleted, 'completed'), sum(Metric.JobsRetried, 'retried'), sum(Metric.JobsFailed, 'failed for good'), sum(Metric.JobsReaped, 'reaped (stuck)')],
          }),
          new cloudwatch.GraphWidget({
            title: 'Queue',
            width: 8,
            left: [appMetric(Metric.QueueDepth, 'Maximum', minute).with({ label: 'runnable jobs' })],
            right: [appMetric(Metric.OldestJobAgeSeconds, 'Maximum', minute).with({ label: 'oldest job age (s)' })],
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Processing time per job (ms)',
            width: 8,
            left: ['p50', 'p90', 'p99'].map((p) => appMetric(Metric.ProcessingDuration, p, minute).with({ label: p })),
          }),
          new cloudwatch.GraphWidget({
            title: 'Processor Lambda',
            width: 8,
            left: [processor.metricErrors({ period: minute }), processor.metricThrottles({ period: minute })],
            right: [processor.metricDuration({ period: minute, statistic: 'Maximum' })],
          }),
          new cloudwatch.GraphWidget({
            title: 'API',
            width: 8,
            left: [api.metricClientError({ period: minute }), api.metricServerError({ period: minute })],
            right: [api.metricLatency({ period: minute, statistic: 'p90' })],
          }),
        ],
        [new cloudwatch.SingleValueWidget({ title: 'Processor runs (last 5 min)', width: 8, metrics: [appMetric(Metric.ProcessorInvocations, 'Sum', Duration.minutes(5))] })],
      ],
    });
  }
}
