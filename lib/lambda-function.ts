import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Charset, NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { join } from 'node:path';
import { METRIC_NAMESPACE, SERVICE_NAME } from '../lambda/core/alarm-rules';
import type { Database } from './database';
import type { Network } from './network';

export const REPO_ROOT = join(__dirname, '..');
/** The project's own esbuild, for extra entry points bundled beside a handler. */
export const ESBUILD = join(REPO_ROOT, 'node_modules', '.bin', 'esbuild');
/** esbuild's target for the Lambda runtime below. */
export const BUNDLE_TARGET = 'node24';

export interface ServiceFunctionProps {
  readonly network: Network;
  readonly database: Database;
  /** File under lambda/handlers/ that exports `handler`. */
  readonly handlerFile: string;
  /** Shown in the Lambda console. */
  readonly description: string;
  readonly timeout: Duration;
  /** @default 512 MiB */
  readonly memorySize?: number;
  /** Added to the shared variables (database location, Powertools settings). @default none */
  readonly environment?: Record<string, string>;
  /** Merged over the shared bundling options. @default none */
  readonly bundling?: BundlingOptions;
  /** @default no reservation (the account's unreserved pool) */
  readonly reservedConcurrentExecutions?: number;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The one way this stack makes a Lambda: Node.js 24 on arm64 (cdk-nag's L1 wants
 * the newest runtime), bundled by the local esbuild (never Docker, no npm
 * install: everything is inlined but the AWS SDK) with source maps, its own log group with retention, X-Ray tracing, in the isolated subnets
 * behind the Lambda security group. It may read the database secret; the
 * password itself never appears in the template or the environment.
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
        DB_SECRET_ARN: props.database.secret.secretArn,
        DB_HOST: props.database.proxy.endpoint,
        DB_NAME: props.database.databaseName,
        DB_SSL: 'true',
        ...props.environment,
      },
      bundling: {
        // Maps without the sources themselves: stack traces still name the
        // TypeScript file and line, at a fraction of the size.
        sourceMap: true,
        sourcesContent: false,
        minify: true,
        target: BUNDLE_TARGET,
        format: OutputFormat.CJS,
        // Non-ASCII text (the stopword lists) as UTF-8 rather than \uXXXX escapes: 135 KB less.
        charset: Charset.UTF8,
        // The Lambda runtime provides the AWS SDK v3; everything else is bundled.
        externalModules: ['@aws-sdk/*'],
        ...props.bundling,
      },
    });
    props.database.grantConnect(this.fn);
  }
}
