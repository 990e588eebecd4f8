import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { join } from 'node:path';
import type { Database } from './database';
import { DATABASE_NAME } from './database';
import type { Network } from './network';
import { METRIC_NAMESPACE, SERVICE_NAME } from '../lambda/core/alarm-rules';

export const REPO_ROOT = join(__dirname, '..');

export interface ServiceFunctionProps {
  readonly network: Network;
  readonly database: Database;
  /** Handler file under lambda/handlers/. */
  readonly handlerFile: string;
  readonly timeout: Duration;
  readonly memorySize?: number;
  readonly environment?: Record<string, string>;
  readonly bundling?: NodejsFunctionProps['bundling'];
  readonly reservedConcurrentExecutions?: number;
  readonly logRetention?: logs.RetentionDays;
  readonly description: string;
}

/**
 * The one way this stack makes a Lambda: Node.js 24 on arm64, bundled by the
 * local esbuild (never Docker) with source maps, its own log group with
 * retention, X-Ray tracing, in the isolated subnets behind the Lambda security
 * group, connected to the database through the proxy. Database credentials
 * arrive as a secret ARN, never as a value.
 */
export class ServiceFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ServiceFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.fn = new NodejsFunction(this, 'Function', {
      description: props.description,
      entry: join(REPO_ROOT, 'lambda', 'handlers', props.handlerFile),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout,
      tracing: lambda.Tracing.ACTIVE,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      vpc: props.network.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [props.network.lambdaSecurityGroup],
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      projectRoot: REPO_ROOT,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        DB_SECRET_ARN: props.database.instance.secret!.secretArn,
        DB_HOST: props.database.proxy.endpoint,
        DB_NAME: DATABASE_NAME,
        DB_SSL: 'true',
        ...props.environment,
      },
      bundling: {
        sourceMap: true,
        minify: true,
        target: 'node22',
        format: OutputFormat.CJS,
        // The Lambda runtime provides the AWS SDK v3.
        externalModules: ['@aws-sdk/*'],
        ...props.bundling,
      },
    });
    props.database.grantConnect(this.fn);
  }
}
