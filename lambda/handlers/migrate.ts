import type { Context } from 'aws-lambda';
import { setTimeout as sleep } from 'node:timers/promises';
import { closePool, getPool } from '../core/db';
import { logger } from '../core/logger';
import { migrate } from '../core/migrate';
import { clearSecretCache } from '../core/secrets';

/**
 * Deploy-time migrations: invoked by the stack's trigger after the database and
 * its proxy exist, and again whenever this bundle (which carries the SQL files)
 * changes. Returns the names applied; a failure fails the deployment.
 */

// On a first deploy the proxy's target may still be registering, and the
// first credential rotation may be changing the password: both pass within
// minutes. Anything else (a bad migration) fails at once.
const NOT_READY_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', '28P01', '57P03', '08001', '08006']);
const RETRY_DELAY_MS = 15_000;
const GIVE_UP_WITH_MS_LEFT = 60_000;

function databaseNotReady(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NOT_READY_CODES.has(code)) return true;
  return /connection terminated|timeout expired|timed out/i.test(String((err as Error | null)?.message));
}

export const handler = async (_event: unknown, context: Context): Promise<{ applied: string[] }> => {
  logger.addContext(context);
  for (let attempt = 1; ; attempt++) {
    try {
      const applied = await migrate(await getPool());
      logger.info('migrations applied', { applied, count: applied.length, attempt });
      return { applied };
    } catch (err) {
      if (!databaseNotReady(err) || context.getRemainingTimeInMillis() < RETRY_DELAY_MS + GIVE_UP_WITH_MS_LEFT) {
        logger.error('migrations failed', err as Error);
        throw err;
      }
      logger.warn('database not reachable yet; retrying', { attempt, error: String(err) });
      // The password may have just been rotated: read it again and reconnect.
      clearSecretCache();
      await closePool().catch(() => undefined);
      await sleep(RETRY_DELAY_MS);
    }
  }
};
