import { Client, Pool, type PoolClient, type PoolConfig } from 'pg';
import { databaseConfig, type DatabaseConfig } from './config';
import { forgetSecret, getSecretString } from './secrets';

/**
 * The one database pool module. One small pool per Lambda container, created on
 * first use and reused across invocations; RDS Proxy does the multiplexing.
 * Nothing here pins a proxy connection: no session SETs, no LISTEN, no named
 * prepared statements.
 *
 * A lost connection never crashes the process: every client carries its own
 * `error` listener for its whole life (pg-pool only listens while a client is
 * idle, so a backend terminated while a client is checked out would otherwise
 * raise an unhandled `error` event), and a client that failed is destroyed on
 * release, never handed out again.
 */

export type Db = Pool | PoolClient;

let shared: Promise<Pool> | undefined;

/** SQLSTATE of a wrong password: after a rotation, the cached secret is stale. */
const INVALID_PASSWORD = '28P01';

/**
 * A pg client that survives its socket dying while checked out, and forgets the
 * cached database secret when the server refuses the password (rotation), so
 * the next connection reads the new one.
 */
class DbClient extends Client {
  constructor(config?: ConstructorParameters<typeof Client>[0]) {
    super(config);
    // The failed client is discarded by whoever holds it (withTransaction,
    // pool.query) when its next statement rejects; the event itself is not news.
    this.on('error', () => undefined);
  }

  override connect(): Promise<Client>;
  override connect(callback: (err: Error | null, c?: Client) => void): void;
  override connect(callback?: (err: Error | null, c?: Client) => void): Promise<Client> | void {
    const check = (err: unknown) => {
      if ((err as { code?: string } | null)?.code === INVALID_PASSWORD) forgetSecret();
    };
    if (callback) {
      super.connect((err: Error | null) => {
        check(err);
        callback(err, this);
      });
      return;
    }
    return super.connect().catch((err: unknown) => {
      check(err);
      throw err;
    });
  }
}

export async function poolConfig(config: DatabaseConfig): Promise<PoolConfig> {
  const base: PoolConfig = {
    max: config.poolMax,
    idleTimeoutMillis: 60_000,
    // A database that does not answer is an outage, not a slow request: fail
    // fast so the API can answer 503 well inside API Gateway's 29 s.
    connectionTimeoutMillis: config.connectTimeoutMs,
    // Client-side, so it also ends a wait on a frozen server and pins nothing.
    query_timeout: config.queryTimeoutMs,
    keepAlive: true,
    application_name: 'summary-jobs',
  };
  if (config.url) {
    // Sent in the startup packet (not a SET); only without RDS Proxy, which
    // applies its own init settings to the connections it opens.
    return {
      ...base,
      connectionString: config.url,
      statement_timeout: config.statementTimeoutMs,
      ssl: config.ssl ? { rejectUnauthorized: true } : undefined,
    };
  }
  const secretArn = config.secretArn!;
  const readSecret = async () => JSON.parse(await getSecretString(secretArn)) as { username: string; password: string; dbname?: string };
  const secret = await readSecret();
  return {
    ...base,
    host: config.host,
    port: config.port,
    database: secret.dbname ?? config.database,
    user: secret.username,
    // Asked for on every new connection: a rotated password is read from
    // Secrets Manager once the cache expires or a login was refused (DbClient).
    password: async () => (await readSecret()).password,
    // RDS Proxy requires TLS; its certificate chains to Amazon's public roots.
    ssl: config.ssl ? { rejectUnauthorized: true } : undefined,
  };
}

export function createPool(config: PoolConfig): Pool {
  const pool = new Pool({ ...config, Client: DbClient as unknown as PoolConfig['Client'] });
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

/**
 * Runs `fn` in a transaction on one client. A failed transaction's client is
 * destroyed rather than returned: after a lost connection or a client-side
 * timeout it may be dead or still busy with the abandoned statement.
 */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let failure: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    failure = err instanceof Error ? err : new Error(String(err));
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release(failure);
  }
}

// Connection exceptions (08), an operator or failover ending sessions (57P01-3),
// too many connections (53300), serialization failures and deadlocks (40001,
// 40P01), a statement cut off by statement_timeout (57014), and a refused
// password (28P01): after a rotation the next connection reads the new secret.
const TRANSIENT_SQLSTATES = /^(08...|57P0[123]|53300|40001|40P01|57014|28P01)$/;
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);
const TRANSIENT_MESSAGES = [
  'Connection terminated',
  'connection timeout',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'not queryable',
  'Client was closed',
  'terminating connection',
  'the database system is',
  'Connection refused',
];

/**
 * Whether an error is the database (or the way to it) failing rather than the
 * statement being wrong: the same call may succeed a moment later. Callers retry
 * these, answer 503, and never count them against a job.
 */
export function isTransientDbError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (TRANSIENT_SQLSTATES.test(code) || TRANSIENT_NODE_CODES.has(code))) return true;
  if (err instanceof AggregateError) return err.errors.some(isTransientDbError);
  return typeof message === 'string' && TRANSIENT_MESSAGES.some((m) => message.includes(m));
}
