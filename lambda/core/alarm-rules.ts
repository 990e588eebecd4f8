/**
 * Metrics the code emits and the alarm rules on them, defined once: the CDK
 * stack turns each rule into a CloudWatch alarm, and local mode evaluates the
 * same rules against the same metrics and pages a local sink.
 */

export const METRIC_NAMESPACE = 'SummaryJobs';

/** The Powertools service name: the `service` dimension of every metric, and the logs' service field. */
export const SERVICE_NAME = 'summary-jobs';

/** Metric names emitted by the processor (EMF in Lambda). */
export const Metric = {
  JobsClaimed: 'JobsClaimed',
  JobsCompleted: 'JobsCompleted',
  JobsRetried: 'JobsRetried',
  /** System failures for good (retries exhausted on a retryable error, bugs, timeouts): pages. */
  JobsFailed: 'JobsFailed',
  /** Client-caused permanent failures (unreadable, empty, binary, too large, unsupported): counted, never pages. */
  JobsFailedClientError: 'JobsFailedClientError',
  /** Jobs run again later without spending an attempt (upstream throttling). */
  JobsSnoozed: 'JobsSnoozed',
  JobsReaped: 'JobsReaped',
  ProcessingDuration: 'ProcessingDuration',
  QueueDepth: 'QueueDepth',
  OldestJobAgeSeconds: 'OldestJobAgeSeconds',
  ProcessorInvocations: 'ProcessorInvocations',
  /** A processor run that reached the database (reap and claim answered): the liveness signal. */
  ProcessorRunsSucceeded: 'ProcessorRunsSucceeded',
  /** A statement or connection failed on infrastructure (connection lost, timeout, database down), API or processor. */
  DatabaseErrors: 'DatabaseErrors',
  /** Runnable jobs held back only by a rate limit: not the processor falling behind. */
  JobsHeldByRateLimit: 'JobsHeldByRateLimit',
} as const;
export type MetricName = (typeof Metric)[keyof typeof Metric];

/** The processor runs on this schedule; the stack and local mode both use it. */
export const PROCESSOR_SCHEDULE_MINUTES = 1;

export interface AlarmRule {
  /** Alarm name suffix, stable: on-call searches by it. */
  name: string;
  metric: MetricName;
  statistic: 'Sum' | 'Maximum' | 'Average';
  periodSeconds: number;
  evaluationPeriods: number;
  threshold: number;
  comparison: 'GreaterThanOrEqualToThreshold' | 'GreaterThanThreshold' | 'LessThanThreshold';
  /** Liveness treats silence as failure; sparse failure counters do not. */
  treatMissingData: 'breaching' | 'notBreaching';
  /** What it means, first steps, where to look. */
  description: string;
}

/**
 * Every rule here pages on-call (the stack sends each to the SNS topic; local
 * mode to its sinks). Signals that must not page have no rule:
 * `JobsFailedClientError` (the client sent a document no summarizer can read)
 * and `JobsHeldByRateLimit` (a limit doing its job) are on the dashboards only.
 */
export const ALARM_RULES: readonly AlarmRule[] = [
  {
    name: 'JobFailedForGood',
    metric: Metric.JobsFailed,
    statistic: 'Sum',
    periodSeconds: 60,
    evaluationPeriods: 1,
    threshold: 1,
    comparison: 'GreaterThanOrEqualToThreshold',
    treatMissingData: 'notBreaching',
    description:
      'A summary job failed for good because of the system, not the client: a retryable error (Bedrock throttling, a dependency ' +
      'down, a timeout, a crash) used all its attempts, or the code failed. Documents the client got wrong (unreadable, empty, ' +
      'binary, too large, unsupported) never page: they are counted as JobsFailedClientError and shown per client on the dashboard. ' +
      'First steps: find the job id, client and error in the processor log ("job failed for good") or the alert; fix the cause, ' +
      'then re-queue it with POST /admin/jobs/{id}/retry. Where: processor log group, dashboard "Latest failures".',
  },
  {
    name: 'StuckJobsReaped',
    metric: Metric.JobsReaped,
    statistic: 'Sum',
    periodSeconds: 60,
    evaluationPeriods: 1,
    threshold: 1,
    comparison: 'GreaterThanOrEqualToThreshold',
    treatMissingData: 'notBreaching',
    description:
      'Jobs whose worker stopped heartbeating (crash, timeout, frozen container, a local process killed) were put back in the queue. ' +
      'First steps: look for processor timeouts or out-of-memory errors around that minute; check JOB_TIMEOUT_MS against the ' +
      'function timeout. Where: processor log group ("reaped expired leases"), Lambda Duration and Errors.',
  },
  {
    name: 'OldestJobTooOld',
    metric: Metric.OldestJobAgeSeconds,
    statistic: 'Maximum',
    periodSeconds: 60,
    evaluationPeriods: 3,
    threshold: 300,
    comparison: 'GreaterThanThreshold',
    treatMissingData: 'notBreaching',
    description:
      'The oldest job that could run now has waited more than 5 minutes: the processor is not keeping up or not running. Jobs held ' +
      'back only by a rate limit are not counted here (they are JobsHeldByRateLimit, which does not page). ' +
      'First steps: check ProcessorNotRunning and DatabaseErrors, Lambda throttles and concurrency, and queue depth on the ' +
      'dashboard. Where: dashboard "Queue", processor log group.',
  },
  {
    name: 'ProcessorNotRunning',
    metric: Metric.ProcessorRunsSucceeded,
    statistic: 'Sum',
    periodSeconds: 60,
    evaluationPeriods: 3,
    threshold: 1,
    comparison: 'LessThanThreshold',
    treatMissingData: 'breaching',
    description:
      'No processor run has reached the database for 3 minutes (a run counts only once it reaped and claimed): the schedule is ' +
      'disabled, the function fails at start, or the database is unreachable (see DatabaseErrors). First steps: check the ' +
      'EventBridge rule is enabled, then the processor log group for start-up and database errors. ' +
      'Where: processor log group, EventBridge rule metrics, RDS and RDS Proxy metrics.',
  },
  {
    name: 'DatabaseErrors',
    metric: Metric.DatabaseErrors,
    statistic: 'Sum',
    periodSeconds: 60,
    evaluationPeriods: 1,
    threshold: 3,
    comparison: 'GreaterThanOrEqualToThreshold',
    treatMissingData: 'notBreaching',
    description:
      'The API or the processor lost the database 3 or more times in a minute (connection refused or lost, a timeout, the server ' +
      'shutting down or failing over). Meanwhile the API answers 503 with Retry-After, and jobs are not failed for it: claimed ' +
      'jobs not yet started are released and a run cut short by the database does not spend an attempt. First steps: RDS events ' +
      '(failover, maintenance, storage full), database CPU and connections, RDS Proxy health. Where: RDS console, API and ' +
      'processor log groups ("database").',
  },
];
