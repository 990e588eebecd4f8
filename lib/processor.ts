import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambdaDestinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROCESSOR_SCHEDULE_MINUTES } from '../lambda/core/alarm-rules';
import type { Database } from './database';
import { BUNDLE_TARGET, ESBUILD, REPO_ROOT, ServiceFunction } from './lambda-function';
import type { Network } from './network';

export type Summarizer = 'extractive' | 'bedrock';

export const DEFAULT_BEDROCK_MODEL_ID = 'anthropic.claude-3-haiku-20240307-v1:0';

export interface ProcessorProps {
  readonly network: Network;
  readonly database: Database;
  /**
   * Reserve this many concurrent executions for the processor (also its cap; each
   * holds up to DB_POOL_MAX proxy connections). Lambda refuses a reservation that
   * leaves the account fewer than 100 unreserved, and new accounts often have a
   * limit of 10 in all, so a reservation is asked for, never assumed.
   * @default no reservation: the processor shares the account's unreserved pool
   */
  readonly reservedConcurrency?: number;
  /** How often the schedule starts it. @default PROCESSOR_SCHEDULE_MINUTES (every minute) */
  readonly scheduleMinutes?: number;
  /**
   * Lambda gives one vCPU per 1,769 MiB: the default buys two, so the two
   * summarize threads run side by side (summarizing alone scales 2.1x from one
   * thread to two on two free cores; BENCHMARKS.md, pipeline).
   * @default 3538 MiB
   */
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

export const DEFAULT_PROCESSOR_MEMORY_MIB = 3538;

/** Summarize threads for a Lambda of this size: one per full vCPU (1,769 MiB each), at least one. */
export function summarizeThreadsFor(memoryMiB: number): number {
  return Math.max(1, Math.floor(memoryMiB / 1769));
}

/** The summarizing worker-thread entry; bundled beside the handler as `summarize-worker.js` once it exists. */
export const SUMMARIZE_WORKER_ENTRY = join(REPO_ROOT, 'lambda', 'core', 'summarize-worker.ts');
/** unpdf's two ES modules (its API and its serverless pdf.js build), loaded by path in the PDF worker thread. */
const PDF_READER_FILES = ['index.mjs', 'pdfjs.mjs'].map((file) => join(REPO_ROOT, 'node_modules', 'unpdf', 'dist', file));

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
  /** Minutes between scheduled runs: the liveness alarm's window follows it. */
  readonly scheduleMinutes: number;

  constructor(scope: Construct, id: string, props: ProcessorProps) {
    super(scope, id);
    this.summarizer = props.summarizer ?? 'extractive';
    const modelId = props.bedrockModelId ?? DEFAULT_BEDROCK_MODEL_ID;
    this.scheduleMinutes = props.scheduleMinutes ?? PROCESSOR_SCHEDULE_MINUTES;

    this.deadLetterQueue = new sqs.Queue(this, 'FailedInvocations', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    const memoryMiB = props.memoryMiB ?? DEFAULT_PROCESSOR_MEMORY_MIB;
    this.function = new ServiceFunction(this, 'ProcessorFunction', {
      network: props.network,
      database: props.database,
      handlerFile: 'processor.ts',
      description: 'Claims summary jobs and summarizes their documents',
      timeout: TIMEOUT,
      memorySize: memoryMiB,
      reservedConcurrentExecutions: props.reservedConcurrency,
      environment: {
        MAX_RUN_MS: String(MAX_RUN_MS),
        JOB_TIMEOUT_MS: String(JOB_TIMEOUT_MS),
        SAFETY_MARGIN_MS: String(JOB_TIMEOUT_MS + 10_000),
        SUMMARIZER: this.summarizer,
        // Set from the memory rather than read from the container: the cores a
        // Lambda reports need not follow its CPU share at small sizes.
        SUMMARIZE_THREADS: String(summarizeThreadsFor(memoryMiB)),
        ...(this.summarizer === 'bedrock' ? { BEDROCK_MODEL_ID: modelId } : {}),
        ...props.settings,
      },
      bundling: {
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          // Files beside index.js that worker threads load by path: the PDF
          // reader (pure JavaScript, about 1.6 MB) and the summarizing worker,
          // bundled like the handler (skipped while its source does not exist),
          // without a source map: the pool hands back only an error's message,
          // and the map would be 0.43 MB of a 5 MB budget.
          afterBundling: (_inputDir: string, outputDir: string) => [
            `mkdir -p "${outputDir}/unpdf"`,
            ...PDF_READER_FILES.map((file) => `cp "${file}" "${outputDir}/unpdf/"`),
            ...(existsSync(SUMMARIZE_WORKER_ENTRY)
              ? [
                  `"${ESBUILD}" "${SUMMARIZE_WORKER_ENTRY}" --bundle --platform=node --target=${BUNDLE_TARGET} --format=cjs --minify --charset=utf8 ` +
                    `--external:@aws-sdk/* --log-level=warning --outfile="${outputDir}/summarize-worker.js"`,
                ]
              : []),
          ],
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
      schedule: events.Schedule.rate(Duration.minutes(this.scheduleMinutes)),
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
