import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { ALARM_RULES, METRIC_NAMESPACE, SERVICE_NAME, type AlarmRule, type MetricName } from '../lambda/core/alarm-rules';
import type { Api } from './api';
import type { Database } from './database';
import type { Processor } from './processor';

export interface AlarmsProps {
  readonly api: Api;
  readonly processor: Processor;
  readonly database: Database;
  /** Subscribe this address to the alert topic. @default no subscription */
  readonly alarmEmail?: string;
  /** Database connections that count as "too many". @default 70 (db.t4g.micro allows about 80) */
  readonly maxDatabaseConnections?: number;
}

/** A metric the processor emits (EMF, `service` dimension from Powertools). */
export function appMetric(name: MetricName, statistic: string, period: Duration): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace: METRIC_NAMESPACE, metricName: name, dimensionsMap: { service: SERVICE_NAME }, statistic, period });
}

interface AlarmOptions {
  threshold: number;
  comparisonOperator: cloudwatch.ComparisonOperator;
  /** @default 1 */
  evaluationPeriods?: number;
  /** Sparse failure counters: silence is fine. @default NOT_BREACHING */
  treatMissingData?: cloudwatch.TreatMissingData;
  /** What it means, first steps, where to look. */
  description: string;
}

/**
 * On-call's pager: an SNS topic encrypted with a customer-managed key that
 * CloudWatch may use (with the AWS-managed SNS key, alarm notifications are
 * silently dropped), and one alarm per rule in ALARM_RULES plus the AWS-side ones.
 */
export class Alarms extends Construct {
  readonly topic: sns.Topic;
  readonly key: kms.Key;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'AlertsKey', { description: 'summary-jobs alert topic', enableKeyRotation: true });
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    this.topic = new sns.Topic(this, 'AlertTopic', { displayName: 'summary-jobs alerts', masterKey: this.key, enforceSSL: true });
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));

    for (const rule of ALARM_RULES) this.fromRule(rule);

    const processor = props.processor.function.fn;
    this.add('ProcessorErrors', processor.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }), {
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      description:
        'The processor Lambda failed (crash, timeout, or an error before its handler returned). Jobs are safe: their leases lapse and the ' +
        'reaper re-queues them. First steps: read the processor log group for the error; check Duration against the 5-minute timeout. ' +
        'Where: processor log group, the FailedInvocations dead-letter queue.',
    });
    this.add('ProcessorThrottles', processor.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }), {
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      description:
        'Processor invocations were throttled: reserved concurrency is used up (nudges arrive faster than runs finish). Jobs wait for the ' +
        'next run. First steps: compare QueueDepth with throughput; raise reservedConcurrency if the database has headroom. Where: dashboard.',
    });
    this.add('Api5xxRate', props.api.restApi.metricServerError({ period: Duration.minutes(5), statistic: 'Average' }), {
      threshold: 0.05,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'More than 5% of API requests failed with a 5xx for 10 minutes. Clients see errors. First steps: the upload Lambda log group ' +
        '("unhandled error"), database connections and proxy health. Where: API access logs, upload Lambda logs, dashboard.',
    });
    const instance = props.database.instance;
    this.add('DatabaseCpu', instance.metricCPUUtilization({ period: Duration.minutes(5) }), {
      threshold: 80,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'Database CPU above 80% for 15 minutes. Claims and uploads slow down. First steps: check throughput and queue depth, slow ' +
        'statements in the postgresql log, and autovacuum on summary_jobs; consider a larger instance class. Where: RDS console, dashboard.',
    });
    this.add('DatabaseFreeStorage', instance.metricFreeStorageSpace({ period: Duration.minutes(5) }), {
      threshold: 2 * 1024 ** 3,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      description:
        'Less than 2 GiB of database storage left. First steps: check RETENTION_DAYS (finished jobs and their uploads are pruned after ' +
        'it) and table bloat; storage autoscaling grows to its maximum. Where: RDS console, summary_jobs and uploads sizes.',
    });
    this.add('DatabaseConnections', instance.metricDatabaseConnections({ period: Duration.minutes(5) }), {
      threshold: props.maxDatabaseConnections ?? 70,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'The database is close to its connection limit. First steps: check RDS Proxy pinning (DatabaseConnectionsCurrentlySessionPinned), ' +
        'Lambda concurrency, and DB_POOL_MAX. Where: RDS and RDS Proxy metrics.',
    });
  }

  private fromRule(rule: AlarmRule): void {
    const comparison = {
      GreaterThanOrEqualToThreshold: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      GreaterThanThreshold: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      LessThanThreshold: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    }[rule.comparison];
    this.add(rule.name, appMetric(rule.metric, rule.statistic, Duration.seconds(rule.periodSeconds)), {
      threshold: rule.threshold,
      evaluationPeriods: rule.evaluationPeriods,
      comparisonOperator: comparison,
      treatMissingData: rule.treatMissingData === 'breaching' ? cloudwatch.TreatMissingData.BREACHING : cloudwatch.TreatMissingData.NOT_BREACHING,
      description: rule.description,
    });
  }

  private add(name: string, metric: cloudwatch.IMetric, opts: AlarmOptions): void {
    const alarm = new cloudwatch.Alarm(this, name, {
      metric,
      threshold: opts.threshold,
      comparisonOperator: opts.comparisonOperator,
      evaluationPeriods: opts.evaluationPeriods ?? 1,
      treatMissingData: opts.treatMissingData ?? cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: opts.description,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    alarm.addOkAction(new actions.SnsAction(this.topic));
    this.alarms.push(alarm);
  }
}
