import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool, PoolClient } from 'pg';

/**
 * Applies the numbered plain-SQL files in migrations/ in order, each in its own
 * transaction, recording name and checksum. A transaction-scoped advisory lock
 * serialises concurrent runners (a session lock would pin an RDS Proxy connection).
 */

// Beside the sources in the repository; a bundled Lambda ships them elsewhere and says where.
export const MIGRATIONS_DIR = process.env.MIGRATIONS_DIR || join(__dirname, '..', '..', 'migrations');

// Arbitrary constant shared by every runner of this schema.
const MIGRATION_LOCK_KEY = 7_301_202_611;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const migrations = files.map((file) => {
    const match = /^(\d+)_([a-z0-9_]+)\.sql$/.exec(file);
    if (!match) throw new MigrationError(`migration file name must look like 001_name.sql: ${file}`);
    const sql = readFileSync(join(dir, file), 'utf8');
    return {
      version: Number(match[1]),
      name: file,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    };
  });
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new MigrationError(`migrations must be numbered 1..n without gaps; found ${m.name} at position ${i + 1}`);
  });
  return migrations;
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/** Longer than any Lambda runs: the pool's short query timeout is for requests, not for schema changes. */
const MIGRATION_QUERY_TIMEOUT_MS = 3_600_000;

async function inLockedTransaction<T>(client: PoolClient, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

function verifyApplied(applied: AppliedRow[], migrations: Migration[]): void {
  for (const row of applied) {
    const known = migrations[row.version - 1];
    if (!known) {
      throw new MigrationError(
        `the database has migration ${row.name}, which this code does not know: the database is newer than the code`,
      );
    }
    if (known.checksum !== row.checksum) {
      throw new MigrationError(
        `migration ${known.name} was edited after it was applied (checksum ${row.checksum.slice(0, 12)} in the database, ` +
          `${known.checksum.slice(0, 12)} on disk): add a new migration instead`,
      );
    }
  }
}

/** Applies pending migrations; returns the names applied by this call. */
export async function migrate(pool: Pool, migrations = loadMigrations()): Promise<string[]> {
  const client = await pool.connect();
  const appliedNow: string[] = [];
  try {
    await inLockedTransaction(client, () =>
      client.query(`
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version    integer PRIMARY KEY,
          name       text NOT NULL,
          checksum   text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`),
    );
    for (const migration of migrations) {
      await inLockedTransaction(client, async () => {
        // Read under the lock: another runner may have applied it meanwhile.
        const { rows } = await client.query<AppliedRow>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
        verifyApplied(rows, migrations);
        if (rows.some((r) => r.version === migration.version)) return;
        // A migration may rewrite a large table: no statement or client-side timeout applies to it.
        await client.query('SET LOCAL statement_timeout = 0');
        await client.query({ text: migration.sql, query_timeout: MIGRATION_QUERY_TIMEOUT_MS } as never);
        await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          migration.version,
          migration.name,
          migration.checksum,
        ]);
        appliedNow.push(migration.name);
      });
    }
    return appliedNow;
  } finally {
    client.release();
  }
}
