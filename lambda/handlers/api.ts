import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { dashboardRoutes } from '../api/dashboard';
import { createApiHandler } from '../api/routes';
import { apiConfig } from '../core/config';
import { getPool } from '../core/db';
import { logger } from '../core/logger';
import { PowertoolsMetrics } from '../core/metrics';
import { getSecretString } from '../core/secrets';

/** API Gateway (REST, proxy integration) entry point. Config and clients are built once per container. */

const config = apiConfig();
const lambda = new LambdaClient({});

/**
 * Nudges sent by one container at most this often. A burst of uploads (one
 * container answers one request at a time, tens per second) would otherwise
 * send one async invoke each; beyond the processor's concurrency they are
 * throttled, wait in Lambda's queue and expire into the dead-letter queue.
 * One nudge starts a run that drains the whole queue, and the payload asks it
 * to keep claiming until `claimUntil`, so the uploads whose nudge was skipped
 * inside the window are claimed by that run.
 * Measured through the bundles (test/bundles/measure-pickup.ts, 40 uploads in
 * 4 s, one container): 250 ms sent 15 invokes, longest wait 0.31-0.39 s;
 * 500 ms: 9-10 invokes, 0.52-0.55 s; 1000 ms: 4-5 invokes, 0.95-1.0 s, no
 * room left for Lambda's own start-up. 500 ms keeps pickup within a second.
 */
export const NUDGE_INTERVAL_MS = 500;

/** The processor's event for a nudge sent at `sentAt`. */
export interface NudgeEvent {
  source: 'upload';
  sentAt: number;
  /** Jobs uploaded until then count on this run: it keeps claiming until this time (epoch ms). */
  claimUntil: number;
}

let lastNudgeAt = Number.NEGATIVE_INFINITY;

/**
 * Wakes the processor so a new job starts within about a second, not at the
 * next scheduled minute. Fire and forget: an 'Event' invoke returns once queued.
 * The job row owns the state, so the processor's async retries are off (see the stack).
 */
export async function nudgeProcessor(now = Date.now()): Promise<void> {
  if (!config.processorFunctionName) return;
  if (now - lastNudgeAt < NUDGE_INTERVAL_MS) return;
  lastNudgeAt = now;
  const event: NudgeEvent = { source: 'upload', sentAt: now, claimUntil: now + NUDGE_INTERVAL_MS };
  try {
    await lambda.send(new InvokeCommand({ FunctionName: config.processorFunctionName, InvocationType: 'Event', Payload: Buffer.from(JSON.stringify(event)) }));
  } catch (err) {
    // Not sent: the next upload tries again instead of counting on this one.
    lastNudgeAt = Number.NEGATIVE_INFINITY;
    throw err;
  }
}

export const handler = createApiHandler({
  pool: getPool,
  adminKey: () => getSecretString(config.adminSecretId),
  nudge: nudgeProcessor,
  logger,
  // Database errors the API meets are counted (EMF) for the DatabaseErrors alarm.
  metrics: new PowertoolsMetrics(),
  config,
  extraRoutes: dashboardRoutes,
});
