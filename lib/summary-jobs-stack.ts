import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { Alarms } from './alarms';
import { Api } from './api';
import { Dashboard } from './dashboard';
import { Database } from './database';
import { Migrations } from './migrations';
import { Network } from './network';
import { Processor, type Summarizer } from './processor';

export interface SummaryJobsStackProps extends StackProps {
  /** API Gateway stage name. @default 'prod' */
  readonly stageName?: string;
  /** E-mail address subscribed to the alert topic. @default no subscription */
  readonly alarmEmail?: string;
  /** @default db.t4g.micro */
  readonly databaseInstanceType?: ec2.InstanceType;
  /** @default 20 GiB, autoscaling to 100 */
  readonly databaseStorageGiB?: number;
  /** @default false */
  readonly multiAz?: boolean;
  /** @default true */
  readonly deletionProtection?: boolean;
  /** @default true: a final snapshot when the database is deleted */
  readonly keepFinalSnapshot?: boolean;
  /** @default 7 days */
  readonly backupRetention?: Duration;
  /** PostgreSQL 16 minor version. @default 16.13 */
  readonly postgresVersion?: string;
  /** Database connections that raise the alarm; size it with the instance class. @default 70 */
  readonly databaseConnectionsAlarmThreshold?: number;
  /** Minutes between scheduled processor runs. @default 1 */
  readonly scheduleMinutes?: number;
  /** Reserved concurrency for the processor (see Processor). @default no reservation */
  readonly processorConcurrency?: number;
  /** @default 1536 */
  readonly processorMemoryMiB?: number;
  /** @default 'extractive' */
  readonly summarizer?: Summarizer;
  /** @default anthropic.claude-3-haiku-20240307-v1:0 */
  readonly bedrockModelId?: string;
}

/** summary-jobs on AWS: network, database, migrations, processor, API, alarms, dashboard. */
export class SummaryJobsStack extends Stack {
  constructor(scope: Construct, id: string, props: SummaryJobsStackProps = {}) {
    super(scope, id, props);
    const network = new Network(this, 'Network', { bedrockEndpoint: props.summarizer === 'bedrock' });
    const database = new Database(this, 'Database', {
      network,
      instanceType: props.databaseInstanceType,
      allocatedStorageGiB: props.databaseStorageGiB,
      multiAz: props.multiAz,
      deletionProtection: props.deletionProtection,
      keepFinalSnapshot: props.keepFinalSnapshot,
      backupRetention: props.backupRetention,
      postgresVersion: props.postgresVersion,
    });
    const migrations = new Migrations(this, 'Migrations', { network, database });
    const processor = new Processor(this, 'Processor', {
      network,
      database,
      reservedConcurrency: props.processorConcurrency,
      scheduleMinutes: props.scheduleMinutes,
      memoryMiB: props.processorMemoryMiB,
      summarizer: props.summarizer,
      bedrockModelId: props.bedrockModelId,
    });
    const api = new Api(this, 'Api', { network, database, processor, stageName: props.stageName });
    // Nothing serves traffic or claims jobs before the schema exists; on updates,
    // new migrations land before the code that needs them.
    processor.node.addDependency(migrations.trigger);
    api.node.addDependency(migrations.trigger);
    const alarms = new Alarms(this, 'Alarms', {
      api,
      processor,
      database,
      alarmEmail: props.alarmEmail,
      maxDatabaseConnections: props.databaseConnectionsAlarmThreshold,
    });
    const dashboard = new Dashboard(this, 'Dashboard', { api, processor, database });

    // What an operator needs after a deploy, ready to paste.
    const adminKey = `aws secretsmanager get-secret-value --secret-id ${api.adminKey.secretArn} --query SecretString --output text`;
    new CfnOutput(this, 'ApiUrl', { value: api.restApi.url, description: 'Base URL of the REST API' });
    new CfnOutput(this, 'AdminKeyCommand', { value: adminKey, description: 'Prints the admin credential (x-api-key for /admin routes and the dashboard)' });
    new CfnOutput(this, 'CreateClientCommand', {
      // The admin key travels through a pipe into curl's headers (-H @-), never
      // into a command line where other users of the machine could read it.
      value:
        `${adminKey} | sed 's/^/x-api-key: /' | curl -sS -X POST ${api.restApi.url}admin/clients -H @- ` +
        `-H 'content-type: application/json' -d '{"name":"CLIENT_NAME"}'`,
      description: 'Creates a client and prints its API key (shown once, only its hash is stored)',
    });
    new CfnOutput(this, 'FireTestAlarmCommand', {
      value: `aws cloudwatch set-alarm-state --alarm-name ${alarms.alarms[0]!.alarmName} --state-value ALARM --state-reason 'Testing the alert path'`,
      description: 'Sends one alarm notification to the alert topic now (the alarm returns to its real state at its next evaluation, with an OK notification)',
    });
    new CfnOutput(this, 'OperatorDashboardUrl', { value: `${api.restApi.url}dashboard`, description: 'The service dashboard page (asks for the admin key)' });
    new CfnOutput(this, 'CloudWatchDashboardName', { value: dashboard.dashboard.dashboardName, description: 'Metrics dashboard in the CloudWatch console' });
    new CfnOutput(this, 'AlertTopicArn', { value: alarms.topic.topicArn, description: 'Every alarm notifies this topic' });
    new CfnOutput(this, 'SubscribeToAlertsCommand', {
      value: `aws sns subscribe --topic-arn ${alarms.topic.topicArn} --protocol email --notification-endpoint YOU@EXAMPLE.COM`,
      description: 'Adds an e-mail address to the alerts (confirm the e-mail it receives)',
    });
    new CfnOutput(this, 'DatabaseSecretArn', { value: database.secret.secretArn, description: 'Database credentials (rotated every 30 days)' });
    new CfnOutput(this, 'DatabaseProxyEndpoint', { value: database.proxy.endpoint, description: 'Where npm run clients / migrate connect, from inside the VPC (TLS required)' });
    new CfnOutput(this, 'RunMigrationsCommand', {
      value: `aws lambda invoke --function-name ${migrations.function.fn.functionName} --cli-read-timeout 900 /dev/stdout`,
      description: 'Applies pending migrations by hand (deploys do it already)',
    });
    new CfnOutput(this, 'RunProcessorCommand', {
      value: `aws lambda invoke --function-name ${processor.function.fn.functionName} --invocation-type Event /dev/null`,
      description: 'Starts a processor run now instead of waiting for the schedule',
    });
    new CfnOutput(this, 'FailedInvocationsQueueUrl', { value: processor.deadLetterQueue.queueUrl, description: 'Processor invocations that failed or expired' });
  }
}
