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

export type Summarizer = 'extractive' | 'bedrock';

export const DEFAULT_BEDROCK_MODEL_ID = 'anthropic.claude-3-haiku-20240307-v1:0';

export interface ProcessorProps {
  readonly network: Network;
  readonly database: Database;
  /** At most this many processor invocations at once; each holds up to DB_POOL_MAX proxy connections. @default 5 */
  readonly reservedConcurrency?: number;
  /** How often the schedule starts it. @default PROCESSOR_SCHEDULE_MINUTES (every minute) */
  readonly scheduleMinutes?: number;
  /** @default 1536 MiB (PDF parsing runs in worker threads with their own heaps) */
  readonly memoryMiB?: number;
  /** @default 'extractive' */
  readonly summarizer?: Summarizer;
  /** Bedrock model for the 'bedrock' summarizer; the function may invoke this model only. @default DEFAULT_BEDROCK_MODEL_ID */
  readonly bedrockModelId?: string;
  /** Extra processor settings (BATCH_SIZE, CONCURRENCY, RETENTION_DAYS, ...), see lambda/core/config.ts. @default none */
  readonly settings?: Record<string, string>;
}

const TIMEOUT = Duration.minutes(5);
// Stop claiming 30 s before Lambda would kill the run; a claimed job's lease
// is renewed by heartbeats, so it need not outlast the function.
const MAX_RUN_MS = TIMEOUT.toMilliseconds() - 30_000;
const JOB_TIMEOUT_MS = 60_000;
// A nudge older than this is pointless: the schedule has run since.
const MAX_EVENT_AGE = Duration.minutes(2);

/**
 * The processor Lambda and what starts it: an EventBridge schedule (the sweeper)
 * and async nudges from the API Lambda (prompt pickup). The job row owns the
 * state, so Lambda's async retries are off: a failed run's jobs are re-queued by
 * the reaper, and the invocation itself lands in a dead-letter queue for inspection.
 */
export class Processor extends Construct {
  readonly function: ServiceFunction;
  readonly schedule: events.Rule;
  readonly deadLetterQueue: sqs.Queue;
  readonly summarizer: Summarizer;

  constructor(scope: Construct, id: string, props: ProcessorProps) {
    super(scope, id);
    this.summarizer = props.summarizer ?? 'extractive';
    const modelId = props.bedrockModelId ?? DEFAULT_BEDROCK_MODEL_ID;

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
      memorySize: props.memoryMiB ?? 1536,
      reservedConcurrentExecutions: props.reservedConcurrency ?? 5,
      environment: {
        MAX_RUN_MS: String(MAX_RUN_MS),
        JOB_TIMEOUT_MS: String(JOB_TIMEOUT_MS),
        SAFETY_MARGIN_MS: String(JOB_TIMEOUT_MS + 10_000),
        SUMMARIZER: this.summarizer,
        ...(this.summarizer === 'bedrock' ? { BEDROCK_MODEL_ID: modelId } : {}),
        ...props.settings,
      },
      bundling: {
        // pdf-parse is loaded by path inside a worker thread, and pdf.js imports
        // its worker file next to it: it ships as an installed package (with the
        // arm64 build of its canvas dependency), not inlined.
        nodeModules: ['pdf-parse'],
        environment: {
          npm_config_cpu: 'arm64',
          npm_config_os: 'linux',
          // Synth must work offline: take packages from the npm cache when it has them, and skip the network-only extras.
          npm_config_prefer_offline: 'true',
          npm_config_audit: 'false',
          npm_config_fund: 'false',
          npm_config_update_notifier: 'false',
        },
      },
    });
    const fn = this.function.fn;
    fn.configureAsyncInvoke({
      retryAttempts: 0,
      maxEventAge: MAX_EVENT_AGE,
      onFailure: new lambdaDestinations.SqsDestination(this.deadLetterQueue),
    });

    if (this.summarizer === 'bedrock') {
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
          maxEventAge: MAX_EVENT_AGE,
          deadLetterQueue: this.deadLetterQueue,
        }),
      ],
    });
  }
}
