/** `npm run migrate`: applies pending migrations to DATABASE_URL. */
import { closePool, getPool } from '../lambda/core/db';
import { migrate } from '../lambda/core/migrate';

async function main() {
  const applied = await migrate(await getPool());
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
}

main()
  .catch((err) => {
    console.error(`migration failed: ${(err as Error).message}`);
    process.exitCode = 1;
  })
  .finally(() => closePool());
