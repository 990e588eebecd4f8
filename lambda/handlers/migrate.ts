import { getPool } from '../core/db';
import { logger } from '../core/logger';
import { migrate } from '../core/migrate';

/**
 * Deploy-time migrations: invoked by the stack's trigger after the database and
 * its proxy exist, and again whenever this bundle (which carries the SQL files)
 * changes. A failure fails the deployment.
 */
export const handler = async () => {
  const applied = await migrate(await getPool());
  logger.info('migrations applied', { applied, count: applied.length });
  return { applied };
};
