import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { Alarms } from './alarms';
import { Api } from './api';
import { Dashboard } from './dashboard';
import { Database } from './database';
import { Migrations } from './migrations';
import { Network } from './network';
import { Processor } from './processor';

export interface SummaryJobsStackProps extends StackProps {
  /** API Gateway stage name. @default 'prod' */
  readonly stageName?: string;
  /** E-mail address subscribed to the alert topic. @default none */
  readonly alarmEmail?: string;
  /** @default db.t4g.micro */
  readonly databaseInstanceType?: ec2.InstanceType;
  /** @default 20 */
  readonly databaseStorageGiB?: number;
  /** @default false */
  readonly multiAz?: boolean;
  /** @default true */
  readonly deletionProtection?: boolean;
  /** @default 7 days */
  readonly backupRetention?: Duration;
  /** Processor schedule in minutes. @default 1 */
  readonly scheduleMinutes?: number;
  /** @default 5 */
  readonly processorConcurrency?: number;
  /** @default 'extractive' */
  readonly summarizer?: 'extractive' | 'bedrock';
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
      backupRetention: props.backupRetention,
    });
    const migrations = new Migrations(this, 'Migrations', { network, database });
    const processor = new Processor(this, 'Processor', {
      network,
      database,
      reservedConcurrency: props.processorConcurrency,
      scheduleMinutes: props.scheduleMinutes,
      summarizer: props.summarizer,
      bedrockModelId: props.bedrockModelId,
    });
    const api = new Api(this, 'Api', { network, database, processor, stageName: props.stageName });
    // Nothing serves traffic before the schema exists.
    processor.node.addDependency(migrations.trigger);
    api.node.addDependency(migrations.trigger);
    const alarms = new Alarms(this, 'Alarms', { api, processor, database, alarmEmail: props.alarmEmail });
    new Dashboard(this, 'Dashboard', { api, processor });

    new CfnOutput(this, 'ApiUrl', { value: api.restApi.url, description: 'Base URL of the REST API' });
    new CfnOutput(this, 'DashboardUrl', { value: `${api.restApi.url}dashboard`, description: 'Operator dashboard (asks for the admin key)' });
    new CfnOutput(this, 'AdminKeyCommand', {
      value: `aws secretsmanager get-secret-value --secret-id ${api.adminKey.secretArn} --query SecretString --output text`,
      description: 'Prints the admin credential',
    });
    new CfnOutput(this, 'AlertTopicArn', { value: alarms.topic.topicArn, description: 'Subscribe on-call here' });
    new CfnOutput(this, 'DatabaseSecretArn', { value: database.instance.secret!.secretArn, description: 'Database credentials (rotated)' });
    new CfnOutput(this, 'ProcessorFunctionName', { value: processor.function.fn.functionName });
    new CfnOutput(this, 'MigrateFunctionName', { value: migrations.function.fn.functionName, description: 'Runs migrations; also usable for one-off maintenance' });
  }
}
