import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** How long every log group of the stack keeps its events. */
export const LOG_RETENTION = logs.RetentionDays.ONE_MONTH;

/**
 * A retention period for a log group that AWS creates on first write rather
 * than CloudFormation (a provider or rotation function's, API Gateway's
 * execution logs): without one it keeps everything forever. LogRetention
 * creates the group or updates the one that already exists, so it cannot race
 * the service writing the first event (a LogGroup resource of the same name
 * would fail the deploy); its own function's group gets one day.
 */
export function retainServiceLogs(scope: Construct, id: string, logGroupName: string): logs.LogRetention {
  return new logs.LogRetention(scope, id, { logGroupName, retention: LOG_RETENTION });
}
