import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
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
  /** Subscribe this address to the alert topic (it must confirm the subscription). @default no subscription */
  readonly alarmEmail?: string;
  /** Database connections that count as "close to the limit". @default 70 (db.t4g.micro allows about 80) */
  readonly maxDatabaseConnections?: number;
}

/**
 * A metric the code emits: EMF written by Powertools Metrics, whose one
 * dimension is `service` (the Powertools service name).
 */
export function appMetric(name: MetricName, statistic: string, period: Duration): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace: METRIC_NAMESPACE, metricName: name, dimensionsMap: { service: SERVICE_NAME }, statistic, period });
}

const COMPARISON: Record<AlarmRule['comparison'], cloudwatch.ComparisonOperator> = {
  GreaterThanOrEqualToThreshold: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  GreaterThanThreshold: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
  LessThanThreshold: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
};

const MISSING_DATA: Record<AlarmRule['treatMissingData'], cloudwatch.TreatMissingData> = {
  breaching: cloudwatch.TreatMissingData.BREACHING,
  notBreaching: cloudwatch.TreatMissingData.NOT_BREACHING,
};

/**
 * A rule as it applies to a processor scheduled every `scheduleMinutes`. A
 * liveness rule (silence is failure) counts on at least one run per period,
 * so its period stretches to the schedule's interval and its window with it:
 * at 5 minutes, 3 periods of 60 s would be breaching between every two runs.
 */
export function ruleForSchedule(rule: AlarmRule, scheduleMinutes: number): { periodSeconds: number; description: string } {
  const scheduleSeconds = scheduleMinutes * 60;
  if (rule.treatMissingData !== 'breaching' || rule.periodSeconds >= scheduleSeconds) {
    return { periodSeconds: rule.periodSeconds, description: rule.description };
  }
  const windowMinutes = (scheduleSeconds * rule.evaluationPeriods) / 60;
  return {
    periodSeconds: scheduleSeconds,
    description: `${rule.description} (This stack runs the processor every ${scheduleMinutes} minutes, so the window is ${rule.evaluationPeriods} periods of ${scheduleMinutes} minutes: ${windowMinutes} minutes.)`,
  };
}

interface AlarmSpec {
  readonly threshold: number;
  readonly comparisonOperator: cloudwatch.ComparisonOperator;
  /** @default 1 */
  readonly evaluationPeriods?: number;
  /** @default NOT_BREACHING: the AWS metrics below are sparse; silence is not a failure */
  readonly treatMissingData?: cloudwatch.TreatMissingData;
  /** What it means, first steps, where to look. */
  readonly description: string;
}

/**
 * On-call's pager: an SNS topic encrypted with a customer-managed key that
 * CloudWatch may use (with the AWS-managed SNS key, alarm notifications are
 * silently dropped), one alarm per rule in ALARM_RULES, and alarms on the AWS
 * metrics of the processor, the API and the database. Every alarm notifies on
 * ALARM and on OK, so a page is followed by its all-clear.
 */
export class Alarms extends Construct {
  readonly topic: sns.Topic;
  readonly key: kms.Key;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'AlertsKey', {
      description: 'summary-jobs alert topic',
      enableKeyRotation: true,
      // It protects notifications in flight only; nothing stays encrypted under it.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    // CloudWatch acts for this stack's alarms only (confused deputy): the
    // account and the alarm names' prefix are conditions of both grants.
    const stack = Stack.of(this);
    const fromOurAlarms = {
      StringEquals: { 'aws:SourceAccount': stack.account },
      ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: `${stack.stackName}-*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
    };
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublishToTheEncryptedTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: fromOurAlarms,
      }),
    );
    this.topic = new sns.Topic(this, 'AlertTopic', { displayName: 'summary-jobs alerts', masterKey: this.key, enforceSSL: true });
    // enforceSSL gives the topic a policy, and a topic with a policy accepts
    // only what it allows: without this, alarm notifications are refused.
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: fromOurAlarms,
      }),
    );
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));

    for (const rule of ALARM_RULES) {
      const { periodSeconds, description } = ruleForSchedule(rule, props.processor.scheduleMinutes);
      this.add(rule.name, appMetric(rule.metric, rule.statistic, Duration.seconds(periodSeconds)), {
        threshold: rule.threshold,
        evaluationPeriods: rule.evaluationPeriods,
        comparisonOperator: COMPARISON[rule.comparison],
        treatMissingData: MISSING_DATA[rule.treatMissingData],
        description,
      });
    }

    const processor = props.processor.function.fn;
    this.add('ProcessorErrors', processor.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }), {
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      description:
        'The processor Lambda failed (crash, timeout, or an error before its handler returned). Jobs are safe: their leases lapse and ' +
        'the reaper re-queues them. First steps: read the processor log group for the error; compare Duration with the 5-minute timeout. ' +
        'Where: processor log group, the FailedInvocations dead-letter queue.',
    });
    this.add('ProcessorThrottles', processor.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }), {
      threshold: 1,
      // Nudges in a burst can be throttled harmlessly; throttling for 15
      // minutes on end means the processor cannot get a slot.
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      description:
        'Processor invocations have been throttled for 15 minutes: the reserved concurrency (-c processorConcurrency) or the ' +
        "account's concurrency limit is used up, so jobs wait for a free run. First steps: compare QueueDepth and OldestJobAgeSeconds " +
        'with throughput on the dashboard; check the account limit (Service Quotas, Lambda concurrent executions) and other functions ' +
        'using it; raise processorConcurrency if the database has CPU and connections to spare. Where: dashboard, processor Lambda metrics.',
    });
    this.add(
      'FailedInvocationsQueued',
      props.processor.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
      {
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        description:
          'Processor invocations failed or expired before they ran (scheduled runs, upload nudges) and wait in the dead-letter queue. ' +
          'Jobs are safe in the database, but runs are being lost: throttling, a crash before the handler, or nudges older than ' +
          'their 2-minute maximum age. First steps: read one message (its requestContext.condition says why), compare with ' +
          'ProcessorThrottles and ProcessorErrors, then purge the queue. Where: the FailedInvocations queue, processor metrics.',
      },
    );
    this.add('Api5xxRate', props.api.restApi.metricServerError({ period: Duration.minutes(5), statistic: 'Average' }), {
      threshold: 0.05,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'More than 5% of API requests failed with a 5xx for 10 minutes. Clients see errors. First steps: the API Lambda log group ' +
        '("unhandled error", timeouts), database connections and the proxy. Where: API access logs, API Lambda logs, dashboard.',
    });

    const instance = props.database.instance;
    this.add('DatabaseCpu', instance.metricCPUUtilization({ period: Duration.minutes(5) }), {
      threshold: 80,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'Database CPU above 80% for 15 minutes: claims and uploads slow down. First steps: throughput and queue depth on the dashboard, ' +
        'slow statements in the postgresql log, autovacuum on summary_jobs; then a larger instance class. Where: RDS console, dashboard.',
    });
    this.add('DatabaseFreeStorage', instance.metricFreeStorageSpace({ period: Duration.minutes(5) }), {
      threshold: 2 * 1024 ** 3,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      description:
        'Less than 2 GiB of database storage left; storage autoscaling grows it only up to its maximum and at most every 6 hours. ' +
        'First steps: RETENTION_DAYS (finished jobs and their documents are pruned after it), table bloat, the autoscaling maximum. ' +
        'Where: RDS console, sizes of summary_jobs and uploads.',
    });
    this.add('DatabaseConnections', instance.metricDatabaseConnections({ period: Duration.minutes(5) }), {
      threshold: props.maxDatabaseConnections ?? 70,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'The database is close to its connection limit. First steps: RDS Proxy pinning (DatabaseConnectionsCurrentlySessionPinned), ' +
        'Lambda concurrency, DB_POOL_MAX. Where: RDS and RDS Proxy metrics.',
    });
  }

  private add(name: string, metric: cloudwatch.IMetric, spec: AlarmSpec): void {
    const alarm = new cloudwatch.Alarm(this, name, {
      // On-call searches and e-mail subjects show this name.
      alarmName: `${Stack.of(this).stackName}-${name}`,
      metric,
      threshold: spec.threshold,
      comparisonOperator: spec.comparisonOperator,
      evaluationPeriods: spec.evaluationPeriods ?? 1,
      treatMissingData: spec.treatMissingData ?? cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: spec.description,
    });
    const notify = new actions.SnsAction(this.topic);
    alarm.addAlarmAction(notify);
    alarm.addOkAction(notify);
    this.alarms.push(alarm);
  }
}
