import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, startEmbeddedPostgres } from '../lambda/local/embedded-postgres';

/** The PostgreSQL server a benchmark runs on, and how to let it go afterwards. */
export interface Server {
  adminUrl: string;
  source: string;
  stop: () => Promise<void>;
}

/** `DATABASE_URL`'s server if set, else 127.0.0.1:5432 if it answers, else an embedded one in a temp directory. */
export async function findServer(log: (message: string) => void): Promise<Server> {
  const none = async () => undefined;
  if (process.env.DATABASE_URL) return { adminUrl: process.env.DATABASE_URL, source: 'DATABASE_URL', stop: none };
  const local = 'postgres://postgres@127.0.0.1:5432/postgres';
  if (await canConnect(local)) return { adminUrl: local, source: '127.0.0.1:5432', stop: none };
  const dataDir = mkdtempSync(join(tmpdir(), 'summary-jobs-bench-pg-'));
  log(`no server at 127.0.0.1:5432: starting an embedded one in ${dataDir}`);
  const pg = await startEmbeddedPostgres({ dataDir, persistent: false });
  return {
    adminUrl: pg.url('postgres'),
    source: 'embedded',
    stop: async () => {
      await pg.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function withDatabaseName(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
