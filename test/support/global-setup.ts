import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, startEmbeddedPostgres, type RunningPostgres } from '../../lambda/local/embedded-postgres';

/**
 * Finds a PostgreSQL server for the suite: TEST_DATABASE_URL when given, the
 * local server on 127.0.0.1:5432 when it answers, or else an embedded one.
 * Each test file then creates (and drops) a database of its own on it.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_DATABASE_URL) return;
  const local = 'postgres://postgres@127.0.0.1:5432/postgres';
  if (await canConnect(local)) {
    process.env.TEST_DATABASE_URL = local;
    return;
  }
  const server: RunningPostgres = await startEmbeddedPostgres({
    dataDir: join(tmpdir(), `summary-jobs-test-pg-${process.pid}`),
    persistent: false,
  });
  (globalThis as { __embeddedPostgres?: RunningPostgres }).__embeddedPostgres = server;
  process.env.TEST_DATABASE_URL = server.url('postgres');
}
