import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { dashboardRoutes } from '../api/dashboard';
import { createApiHandler } from '../api/routes';
import { apiConfig } from '../core/config';
import { getPool } from '../core/db';
import { logger } from '../core/logger';
import { getSecretString } from '../core/secrets';

/** API Gateway (REST, proxy integration) entry point. Config and clients are built once per container. */

const config = apiConfig();
const lambda = new LambdaClient({});

/**
 * Wakes the processor so a new job starts within about a second, not at the
 * next scheduled minute. Fire and forget: an 'Event' invoke returns once queued.
 * The job row owns the state, so the processor's async retries are off (see the stack).
 */
export async function nudgeProcessor(): Promise<void> {
  if (!config.processorFunctionName) return;
  await lambda.send(new InvokeCommand({ FunctionName: config.processorFunctionName, InvocationType: 'Event', Payload: Buffer.from('{"source":"upload"}') }));
}

export const handler = createApiHandler({
  pool: getPool,
  adminKey: () => getSecretString(config.adminSecretId),
  nudge: nudgeProcessor,
  logger,
  config,
  extraRoutes: dashboardRoutes,
});
