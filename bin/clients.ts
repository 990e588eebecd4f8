/**
 * `npm run clients -- <command>`: manage API clients in DATABASE_URL's database
 * (or, when it is not set, the one `npm start` runs: its URL is in .local/database-url).
 *   create <name> [--weight N]   prints the new key once
 *   list
 *   revoke <name>
 *   limit <name> [--per-interval N] [--interval-seconds S] [--max-running K]   set a client's rate limit
 *   unlimit <name>
 */
import { parseArgs } from 'node:util';
import { ClientExistsError, createClient, findClientByName, listClients, revokeClient } from '../lambda/core/clients';
import { closePool, getPool, isTransientDbError } from '../lambda/core/db';
import { deleteRateLimit, setRateLimit } from '../lambda/core/limits';
import { databaseHint, useLocalDatabase } from '../lambda/local/local-state';

const database = useLocalDatabase();

const USAGE = 'usage: npm run clients -- create <name> [--weight N] | list | revoke <name> | limit <name> [--per-interval N] [--interval-seconds S] [--max-running K] | unlimit <name>';

function intOption(value: string | undefined, name: string): number | null {
  if (value === undefined) return null;
  if (!/^\d+$/.test(value)) throw new Error(`--${name} must be a whole number`);
  return Number(value);
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      weight: { type: 'string' },
      'per-interval': { type: 'string' },
      'interval-seconds': { type: 'string' },
      'max-running': { type: 'string' },
    },
  });
  const [command, name] = positionals;
  const pool = await getPool();
  switch (command) {
    case 'create': {
      if (!name) break;
      const { client, apiKey } = await createClient(pool, name, { weight: intOption(values.weight, 'weight') ?? 1 });
      console.log(`created client ${client.name} (${client.id})`);
      console.log(`API key (shown once, store it now): ${apiKey}`);
      return 0;
    }
    case 'list': {
      const clients = await listClients(pool);
      console.table(clients.map((c) => ({ name: c.name, id: c.id, key: `${c.keyPrefix}…`, weight: c.weight, revoked: c.revokedAt?.toISOString() ?? '' })));
      return 0;
    }
    case 'revoke': {
      if (!name) break;
      if (!(await revokeClient(pool, name))) {
        console.error(`no client named ${name}`);
        return 1;
      }
      console.log(`revoked ${name}: its key is refused from now on`);
      return 0;
    }
    case 'limit':
    case 'unlimit': {
      if (!name) break;
      const client = await findClientByName(pool, name);
      if (!client) {
        console.error(`no client named ${name}`);
        return 1;
      }
      if (command === 'unlimit') {
        await deleteRateLimit(pool, 'client', client.id);
        console.log(`removed the rate limit of ${name}`);
        return 0;
      }
      const limit = {
        scope: 'client' as const,
        key: client.id,
        maxPerInterval: intOption(values['per-interval'], 'per-interval'),
        intervalSeconds: intOption(values['interval-seconds'], 'interval-seconds') ?? 60,
        maxRunning: intOption(values['max-running'], 'max-running'),
      };
      await setRateLimit(pool, limit);
      console.log(`rate limit of ${name}: ${JSON.stringify(limit)}`);
      return 0;
    }
  }
  console.error(USAGE);
  return 2;
}

main(process.argv.slice(2))
  .then((code) => (process.exitCode = code))
  .catch((err) => {
    const hint = database !== 'env' && (database === 'none' || isTransientDbError(err)) ? databaseHint(database) : null;
    console.error(err instanceof ClientExistsError ? err.message : (hint ?? `failed: ${(err as Error).message}`));
    process.exitCode = 1;
  })
  .finally(() => closePool());
