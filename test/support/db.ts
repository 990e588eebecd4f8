import { randomBytes } from 'node:crypto';
import { Client, Pool } from 'pg';
import { createPool } from '../../lambda/core/db';
import { migrate } from '../../lambda/core/migrate';

/** A database of the test file's own, created fresh and migrated; dropped afterwards. */
export interface TestDatabase {
  name: string;
  url: string;
  pool: Pool;
  drop: () => Promise<void>;
}

export function adminUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: the jest global setup did not run');
  return url;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(opts: { migrate?: boolean; poolMax?: number } = {}): Promise<TestDatabase> {
  const name = `sj_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = withDatabase(adminUrl(), name);
  const pool = createPool({ connectionString: url, max: opts.poolMax ?? 10 });
  if (opts.migrate !== false) await migrate(pool);
  return {
    name,
    url,
    pool,
    drop: async () => {
      await pool.end();
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
