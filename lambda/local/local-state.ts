import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Where local mode keeps its state (`LOCAL_DIR`, `.local` at the repository
 * root by default), and the embedded database's URL kept there, so that every
 * script (`npm run clients`, `npm run migrate`) reaches the database that
 * `npm start` runs when DATABASE_URL is not set.
 *
 *   <LOCAL_DIR>/pgdata        the embedded server's data (and server.log)
 *   <LOCAL_DIR>/secrets       the dev and admin keys
 *   <LOCAL_DIR>/database-url  postgres://…@127.0.0.1:<port>/summary_jobs
 *   <LOCAL_DIR>/local.pid     the process of the `npm start` that uses it
 */

/** Another `npm start` runs on this LOCAL_DIR: expected, said in one line. */
export class LocalDirInUseError extends Error {
  override name = 'LocalDirInUseError';
}

function isLocalMode(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // A pid reused by an unrelated process after a crash is not a second local mode.
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('local.ts');
  } catch {
    return true;
  }
}

/**
 * Makes this process the one `npm start` on the directory: a second one would
 * reuse the first one's embedded server and then stop it on its way out.
 * A pid file left by a killed run is taken over. Returns the release.
 */
export function claimLocalDir(dir = localDir()): () => void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'local.pid');
  const other = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : NaN;
  if (Number.isInteger(other) && other > 0 && other !== process.pid && isLocalMode(other)) {
    throw new LocalDirInUseError(`another \`npm start\` (pid ${other}) is running on ${dir}; stop it first, or give this one its own LOCAL_DIR and PORT`);
  }
  writeFileSync(file, `${process.pid}\n`);
  return () => {
    try {
      if (Number(readFileSync(file, 'utf8').trim()) === process.pid) rmSync(file, { force: true });
    } catch {
      // gone already
    }
  };
}

export function localDir(env: Record<string, string | undefined> = process.env): string {
  return resolve(env.LOCAL_DIR || join(__dirname, '..', '..', '.local'));
}

export function localDatabaseUrlFile(dir = localDir()): string {
  return join(dir, 'database-url');
}

export function writeLocalDatabaseUrl(url: string, dir = localDir()): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(localDatabaseUrlFile(dir), `${url}\n`, { mode: 0o600 });
}

export function readLocalDatabaseUrl(dir = localDir()): string | null {
  const file = localDatabaseUrlFile(dir);
  if (!existsSync(file)) return null;
  const url = readFileSync(file, 'utf8').trim();
  return url || null;
}

/** The port of the stored URL: the next `npm start` listens there again when it is free, so the URL stays the same. */
export function storedDatabasePort(dir = localDir()): number | undefined {
  const url = readLocalDatabaseUrl(dir);
  if (!url) return undefined;
  const port = Number(new URL(url).port);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

/**
 * For scripts: with neither DATABASE_URL nor DB_SECRET_ARN set, use the URL
 * that `npm start` stored. Returns where the URL came from, for messages.
 */
export function useLocalDatabase(env: Record<string, string | undefined> = process.env): 'env' | 'local' | 'none' {
  if (env.DATABASE_URL || env.DB_SECRET_ARN) return 'env';
  const url = readLocalDatabaseUrl(localDir(env));
  if (!url) return 'none';
  env.DATABASE_URL = url;
  return 'local';
}

/** The one line a script prints when it has no database or the local one does not answer. */
export function databaseHint(source: 'env' | 'local' | 'none', dir = localDir()): string | null {
  if (source === 'none') return `no database: set DATABASE_URL, or start local mode with \`npm start\` (it keeps the embedded database's URL in ${localDatabaseUrlFile(dir)})`;
  if (source === 'local') return `the local database (URL from ${localDatabaseUrlFile(dir)}) does not answer: is \`npm start\` running?`;
  return null;
}
