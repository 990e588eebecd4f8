import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambdaDestinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { PROCESSOR_SCHEDULE_MINUTES } from '../lambda/core/alarm-rules';
import type { Database } from './database';
import { ServiceFunction } from './lambda-function';
import type { Network } from './network';

export interface ProcessorProps {
  readonly network: Network;
  readonly database: Database;
  /** At most this many processor invocations at once. @default 5 */
  readonly reservedConcurrency?: number;
  /** How often the schedule runs it. @default PROCESSOR_SCHEDULE_MINUTES (1) */
  readonly scheduleMinutes?: number;
  /** @default 'extractive' */
  readonly summarizer?: 'extractive' | 'bedrock';
  /** Bedrock model for the 'bedrock' summarizer. @default anthropic.claude-3-haiku-20240307-v1:0 */
  readonly bedrockModelId?: string;
  /** Extra processor settings (BATCH_SIZE, CONCURRENCY, ...), see the README. @default none */
  readonly settings?: Record<string, string>;
}

// The function may run for 5 minutes; it stops claiming well before that.
const TIMEOUT = Duration.minutes(5);
const MAX_RUN_MS = 270_000;
const JOB_TIMEOUT_MS = 60_000;

/**
 * The processor Lambda and what starts it: an EventBridge schedule (the safety
 * net) and async nudges from the upload Lambda. The job row owns the state, so
 * Lambda's own async retries are off; an invocation that fails lands in a
 * dead-letter queue for inspection.
 */
export class Processor extends Construct {
  readonly function: ServiceFunction;
  readonly schedule: events.Rule;
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: ProcessorProps) {
    super(scope, id);
    const summarizer = props.summarizer ?? 'extractive';
    const modelId = props.bedrockModelId ?? 'anthropic.claude-3-haiku-20240307-v1:0';

    this.deadLetterQueue = new sqs.Queue(this, 'FailedInvocations', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    this.function = new ServiceFunction(this, 'ProcessorFunction', {
      network: props.network,
      database: props.database,
      handlerFile: 'processor.ts',
      description: 'Claims summary jobs and summarizes their documents',
      timeout: TIMEOUT,
      memorySize: 1536,
      reservedConcurrentExecutions: props.reservedConcurrency ?? 5,
      environment: {
        MAX_RUN_MS: String(MAX_RUN_MS),
        JOB_TIMEOUT_MS: String(JOB_TIMEOUT_MS),
        SAFETY_MARGIN_MS: String(JOB_TIMEOUT_MS + 10_000),
        SUMMARIZER: summarizer,
        BEDROCK_MODEL_ID: modelId,
        ...props.settings,
      },
      // pdf-parse is loaded by path inside a worker thread: it ships as an
      // installed package, for the function's architecture.
      bundling: {
        nodeModules: ['pdf-parse'],
        environment: { npm_config_cpu: 'arm64', npm_config_os: 'linux' },
      },
    });
    const fn = this.function.fn;
    fn.configureAsyncInvoke({
      retryAttempts: 0,
      maxEventAge: Duration.minutes(2),
      onFailure: new lambdaDestinations.SqsDestination(this.deadLetterQueue),
    });

    if (summarizer === 'bedrock') {
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['bedrock:InvokeModel'],
          resources: [Stack.of(this).formatArn({ service: 'bedrock', account: '', resource: 'foundation-model', resourceName: modelId })],
        }),
      );
    }

    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'Drains the summary-jobs queue; uploads also nudge the processor directly',
      schedule: events.Schedule.rate(Duration.minutes(props.scheduleMinutes ?? PROCESSOR_SCHEDULE_MINUTES)),
      targets: [
        new targets.LambdaFunction(fn, {
          retryAttempts: 0,
          maxEventAge: Duration.minutes(2),
          deadLetterQueue: this.deadLetterQueue,
        }),
      ],
    });
  }
}
