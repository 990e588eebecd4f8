import { Pool, type PoolClient, type PoolConfig } from 'pg';
import { databaseConfig, type DatabaseConfig } from './config';
import { getSecretString } from './secrets';

/**
 * The one database pool module. One small pool per Lambda container, created on
 * first use and reused across invocations; RDS Proxy does the multiplexing.
 * Nothing here pins a proxy connection: no session SETs, no LISTEN, no named
 * prepared statements.
 */

export type Db = Pool | PoolClient;

let shared: Promise<Pool> | undefined;

export async function poolConfig(config: DatabaseConfig): Promise<PoolConfig> {
  const base: PoolConfig = {
    max: config.poolMax,
    idleTimeoutMillis: 60_000,
    connectionTimeoutMillis: 10_000,
    application_name: 'summary-jobs',
  };
  if (config.url) return { ...base, connectionString: config.url, ssl: config.ssl ? { rejectUnauthorized: true } : undefined };
  const secret = JSON.parse(await getSecretString(config.secretArn!)) as { username: string; password: string; dbname?: string };
  return {
    ...base,
    host: config.host,
    port: config.port,
    database: secret.dbname ?? config.database,
    user: secret.username,
    password: secret.password,
    // RDS Proxy requires TLS; its certificate chains to Amazon's public roots.
    ssl: config.ssl ? { rejectUnauthorized: true } : undefined,
  };
}

export function createPool(config: PoolConfig): Pool {
  const pool = new Pool(config);
  // An idle client can lose its socket (a frozen Lambda container, a proxy
  // restart); pg drops it from the pool, and the error must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}

/** The container's pool, built from the environment on first use. */
export function getPool(): Promise<Pool> {
  shared ??= poolConfig(databaseConfig())
    .then(createPool)
    .catch((err) => {
      shared = undefined;
      throw err;
    });
  return shared;
}

export async function closePool(): Promise<void> {
  const pending = shared;
  shared = undefined;
  if (pending) await (await pending).end();
}

export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
