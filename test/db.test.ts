import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { Client } from 'pg';
import { databaseConfig } from '../lambda/core/config';
import { createPool, isTransientDbError, poolConfig, withTransaction } from '../lambda/core/db';
import { clearSecretCache } from '../lambda/core/secrets';
import { createTestDatabase, type TestDatabase } from './support/db';
import { privateClusterUnavailable, startPrivateCluster, type PrivateCluster } from './support/private-cluster';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function terminate(url: string, pid: number): Promise<void> {
  const admin = new Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
  } finally {
    await admin.end();
  }
}

describe('pool: a lost connection', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
  });
  afterAll(() => db.drop());

  it('between two statements of a transaction rejects that transaction, and the pool goes on', async () => {
    const pool = createPool({ connectionString: db.url, max: 2 });
    try {
      const outcome = withTransaction(pool, async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await terminate(db.url, rows[0]!.pid);
        // Long enough for the socket to close and the client to emit its error event.
        await pause(200);
        await tx.query('SELECT 1');
      });
      await expect(outcome).rejects.toThrow();
      await outcome.catch((err) => expect(isTransientDbError(err)).toBe(true));
      // The dead client was destroyed, not returned to the pool.
      expect(pool.totalCount).toBe(0);
      const { rows } = await pool.query<{ n: number }>('SELECT 1 AS n');
      expect(rows[0]!.n).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it('while a client is checked out and idle does not crash the process; the client is discarded on release', async () => {
    const pool = createPool({ connectionString: db.url, max: 1 });
    try {
      const client = await pool.connect();
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await terminate(db.url, rows[0]!.pid);
      await pause(200);
      const err = await client.query('SELECT 1').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTransientDbError(err)).toBe(true);
      client.release(err as Error);
      expect((await pool.query<{ n: number }>('SELECT 2 AS n')).rows[0]!.n).toBe(2);
    } finally {
      await pool.end();
    }
  });

  it('a query on a database that does not answer in time is cut off by the client-side timeout', async () => {
    const pool = createPool({ connectionString: db.url, max: 1, query_timeout: 300 });
    try {
      const started = Date.now();
      const err = await pool.query('SELECT pg_sleep(5)').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(String(err)).toMatch(/timeout/i);
      expect(isTransientDbError(err)).toBe(true);
      expect(Date.now() - started).toBeLessThan(4_000);
      expect((await pool.query<{ n: number }>('SELECT 3 AS n')).rows[0]!.n).toBe(3);
    } finally {
      await pool.end();
    }
  });

  it('a statement over statement_timeout is cancelled by the server when connecting by URL', async () => {
    const config = await poolConfig(databaseConfig({ DATABASE_URL: db.url, DB_STATEMENT_TIMEOUT_MS: '200' }));
    expect(config).toMatchObject({ statement_timeout: 200, query_timeout: 2200, connectionTimeoutMillis: 5000 });
    const pool = createPool(config);
    try {
      await expect(pool.query('SELECT pg_sleep(2)')).rejects.toMatchObject({ code: '57014' });
    } finally {
      await pool.end();
    }
  });
});

describe('isTransientDbError', () => {
  it.each([
    [{ code: '08006' }, true],
    [{ code: '57P01' }, true],
    [{ code: '40001' }, true],
    [{ code: 'ECONNREFUSED' }, true],
    [new Error('Connection terminated unexpectedly'), true],
    [new Error('timeout exceeded when trying to connect'), true],
    [new AggregateError([{ code: 'ECONNREFUSED' }], 'connect failed'), true],
    [{ code: '42601', message: 'syntax error' }, false],
    [{ code: '23505', message: 'duplicate key value' }, false],
    [new Error('unknown job type'), false],
    [null, false],
  ])('%p -> %p', (err, expected) => {
    expect(isTransientDbError(err)).toBe(expected);
  });
});

const unavailable = privateClusterUnavailable();
(unavailable ? describe.skip : describe)('pool: database password rotation', () => {
  let cluster: PrivateCluster;
  const secrets = mockClient(SecretsManagerClient);
  beforeAll(async () => {
    cluster = await startPrivateCluster();
  });
  afterAll(async () => {
    secrets.restore();
    await cluster?.destroy();
  });

  it('a warm pool re-reads the secret after the server refuses the old password, and connects', async () => {
    const admin = new Client({ connectionString: cluster.url() });
    await admin.connect();
    await admin.query(`CREATE ROLE app LOGIN PASSWORD 'first-password'`);
    const secret = (password: string) => ({ SecretString: JSON.stringify({ username: 'app', password, dbname: 'postgres' }) });
    secrets.on(GetSecretValueCommand).resolves(secret('first-password'));
    clearSecretCache();
    const env = { DB_SECRET_ARN: 'arn:db', DB_HOST: '127.0.0.1', DB_PORT: String(cluster.port), DB_SSL: 'false' };
    const pool = createPool({ ...(await poolConfig(databaseConfig(env))), idleTimeoutMillis: 1 });
    try {
      expect((await pool.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u).toBe('app');
      // Rotation: the database and the secret change; the pool's cache still holds the old password.
      await admin.query(`ALTER ROLE app PASSWORD 'second-password'`);
      secrets.on(GetSecretValueCommand).resolves(secret('second-password'));
      await pause(50); // the idle connection closes (idleTimeoutMillis 1): the next query connects anew
      const refused = await pool.query('SELECT 1').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toMatchObject({ code: '28P01' });
      expect(isTransientDbError(refused)).toBe(true);
      expect((await pool.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u).toBe('app');
      expect(secrets.commandCalls(GetSecretValueCommand).length).toBe(2);
    } finally {
      await pool.end();
      await admin.end();
    }
  });
});
