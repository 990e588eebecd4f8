/** `npm run migrate`: applies pending migrations to DATABASE_URL (or, when it is not set, the database `npm start` runs). */
import { closePool, getPool, isTransientDbError } from '../lambda/core/db';
import { migrate } from '../lambda/core/migrate';
import { databaseHint, useLocalDatabase } from '../lambda/local/local-state';

const database = useLocalDatabase();

async function main() {
  const applied = await migrate(await getPool());
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
}

main()
  .catch((err) => {
    const hint = database !== 'env' && (database === 'none' || isTransientDbError(err)) ? databaseHint(database) : null;
    console.error(hint ?? `migration failed: ${(err as Error).message}`);
    process.exitCode = 1;
  })
  .finally(() => closePool());
