import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { Metric, type MetricName } from '../lambda/core/alarm-rules';
import { appMetric } from './alarms';
import type { Api } from './api';
import type { Database } from './database';
import type { Processor } from './processor';

export interface DashboardProps {
  readonly api: Api;
  readonly processor: Processor;
  readonly database: Database;
}

const MINUTE = Duration.minutes(1);
const perMinute = (name: MetricName, label: string) => appMetric(name, 'Sum', MINUTE).with({ label });

/**
 * The CloudWatch view of the service: throughput, outcomes, queue depth and
 * age, processing latency; then the processor Lambda, the API and the database.
 */
export class Dashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    const processor = props.processor.function.fn;
    const api = props.api.restApi;
    const instance = props.database.instance;

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: Stack.of(this).stackName,
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new cloudwatch.GraphWidget({
            title: 'Throughput (jobs/min)',
            width: 8,
            left: [perMinute(Metric.JobsClaimed, 'claimed'), perMinute(Metric.JobsCompleted, 'completed')],
          }),
          new cloudwatch.GraphWidget({
            title: 'Outcomes (jobs/min)',
            width: 8,
            stacked: true,
            left: [
              perMinute(Metric.JobsCompleted, 'completed'),
              perMinute(Metric.JobsRetried, 'retried'),
              perMinute(Metric.JobsFailed, 'failed for good'),
              perMinute(Metric.JobsReaped, 'reaped (worker stopped heartbeating)'),
            ],
          }),
          new cloudwatch.GraphWidget({
            title: 'Queue',
            width: 8,
            left: [appMetric(Metric.QueueDepth, 'Maximum', MINUTE).with({ label: 'runnable jobs' })],
            right: [appMetric(Metric.OldestJobAgeSeconds, 'Maximum', MINUTE).with({ label: 'oldest runnable job age (s)' })],
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Processing time per job (ms)',
            width: 8,
            left: ['p50', 'p90', 'p99'].map((p) => appMetric(Metric.ProcessingDuration, p, MINUTE).with({ label: p })),
          }),
          new cloudwatch.GraphWidget({
            title: 'Processor Lambda',
            width: 8,
            left: [
              processor.metricErrors({ period: MINUTE, label: 'errors' }),
              processor.metricThrottles({ period: MINUTE, label: 'throttles' }),
              perMinute(Metric.ProcessorInvocations, 'runs reported'),
            ],
            right: [processor.metricDuration({ period: MINUTE, statistic: 'Maximum', label: 'longest run (ms)' })],
          }),
          new cloudwatch.GraphWidget({
            title: 'API',
            width: 8,
            left: [api.metricClientError({ period: MINUTE, label: '4xx' }), api.metricServerError({ period: MINUTE, label: '5xx' })],
            right: ['p50', 'p90', 'p99'].map((p) => api.metricLatency({ period: MINUTE, statistic: p, label: `latency ${p} (ms)` })),
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Database',
            width: 12,
            left: [instance.metricCPUUtilization({ period: MINUTE, label: 'CPU %' })],
            right: [instance.metricDatabaseConnections({ period: MINUTE, label: 'connections' })],
          }),
          new cloudwatch.GraphWidget({
            title: 'Failed processor invocations (dead-letter queue)',
            width: 12,
            left: [props.processor.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: MINUTE, label: 'messages' })],
          }),
        ],
      ],
    });
  }
}
