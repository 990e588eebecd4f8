import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../lambda/local/embedded-postgres';

/**
 * `npm start` in its default mode (no DATABASE_URL: the embedded PostgreSQL),
 * as a child process in a process group of its own, with a LOCAL_DIR of its own:
 *   - SIGINT to the whole group (what Ctrl-C sends) while a job runs and others
 *     are claimed: exit 0 within seconds; after a restart every job completes
 *     with exactly one attempt, long before a lease could lapse;
 *   - SIGTERM to the process alone: the same clean exit;
 *   - the embedded server killed under it: started again, the API recovers;
 *   - SIGKILL to the group: the server it leaves behind is found and reused;
 *   - a second `npm start` on the same LOCAL_DIR refuses, leaving the first alone;
 *   - `npm run clients -- create` and `npm run migrate` reach the embedded
 *     database while it runs (its URL is kept in LOCAL_DIR/database-url).
 */

const ROOT = join(__dirname, '..');
const DEV_KEY = 'sj_dev_local_mode_test_key_0123456789';
const JOB_DELAY_MS = 1500;

let localDir: string;
let port: number;
let child: ChildProcess | null = null;
let output = '';

function envWithoutDatabase(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.DATABASE_URL;
  delete env.DB_SECRET_ARN;
  return env;
}

function start(portOfThisOne = port): ChildProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bin', 'local.ts')], {
    cwd: ROOT,
    // Its own process group, as a shell gives a foreground job: kill(-pid) is Ctrl-C.
    detached: true,
    env: envWithoutDatabase({
      PORT: String(portOfThisOne),
      LOCAL_DIR: localDir,
      DEV_API_KEY: DEV_KEY,
      TEST_ONLY_JOB_DELAY_MS: String(JOB_DELAY_MS),
      PROCESSOR_INTERVAL_MS: '200',
      CONCURRENCY: '1',
      BATCH_SIZE: '4',
      POWERTOOLS_LOG_LEVEL: 'WARN',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d) => (output += String(d)));
  proc.stderr!.on('data', (d) => (output += String(d)));
  return proc;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const url = (path: string) => `http://127.0.0.1:${port}${path}`;

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; local mode said:\n${output.slice(-3000)}`);
    await sleep(50);
  }
}

const healthy = () => waitFor('the API to answer', async () => (await fetch(url('/health'))).ok, 30_000);

function exited(proc: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - t0 })));
}

interface JobView {
  status: string;
  attempts: number;
}
async function job(key: string, id: string): Promise<JobView> {
  return (await (await fetch(url(`/jobs/${id}`), { headers: { 'x-api-key': key } })).json()) as JobView;
}

async function upload(key: string, text: string): Promise<string> {
  const res = await fetch(url('/uploads'), { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'text/plain' }, body: text });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

const serverPidFile = () => join(localDir, 'pgdata', 'postmaster.pid');
const DOC = (n: number) =>
  `Document ${n}. Lighthouses guided ships along dangerous coasts for centuries. Each keeper trimmed the wick every night. ` +
  'The Fresnel lens made the beams visible for twenty miles. Automation arrived and the keepers slowly disappeared.';

beforeAll(async () => {
  localDir = mkdtempSync(join(tmpdir(), 'sj-local-mode-'));
  // As root, the server runs as the postgres user, which must reach its data directory.
  chmodSync(localDir, 0o755);
  port = await freePort();
});
afterAll(async () => {
  if (child?.pid) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  // A server still running (a failed assertion above) is stopped, and its data removed.
  if (existsSync(serverPidFile())) {
    const pid = Number(readFileSync(serverPidFile(), 'utf8').split('\n')[0]);
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      // gone already
    }
    await sleep(300);
  }
  rmSync(localDir, { recursive: true, force: true });
});

it('stops cleanly on Ctrl-C and SIGTERM without spending an attempt, and starts again after SIGKILL', async () => {
  // 1. The default mode: an embedded server, its URL kept for the scripts.
  child = start();
  await healthy();
  const storedUrl = readFileSync(join(localDir, 'database-url'), 'utf8').trim();
  expect(storedUrl).toMatch(/^postgres:\/\/.*@127\.0\.0\.1:\d+\/summary_jobs$/);
  expect(output).toContain(storedUrl);

  // A second `npm start` on the same directory refuses in one line, and leaves the first one's database alone.
  const another = start(await freePort());
  const refused = await exited(another);
  expect(refused.code).toBe(1);
  expect(output).toMatch(/local mode failed to start: another `npm start` \(pid \d+\) is running on /);
  expect((await fetch(url('/health'))).status).toBe(200);

  // `npm run clients` without DATABASE_URL reaches the running embedded database, and its key works.
  const created = await promisify(execFile)('npm', ['run', '--silent', 'clients', '--', 'create', 'acme'], {
    cwd: ROOT,
    env: envWithoutDatabase({ LOCAL_DIR: localDir }),
  });
  const migrated = await promisify(execFile)('npm', ['run', '--silent', 'migrate'], { cwd: ROOT, env: envWithoutDatabase({ LOCAL_DIR: localDir }) });
  expect(migrated.stdout).toContain('database is up to date');
  const acmeKey = /API key[^:]*: (\S+)/.exec(created.stdout)?.[1];
  expect(acmeKey).toBeDefined();
  const ids = [await upload(acmeKey!, DOC(1)), await upload(acmeKey!, DOC(2)), await upload(acmeKey!, DOC(3))];

  // 2. Ctrl-C (SIGINT to the whole group) while the first job runs and the others are claimed.
  await waitFor('a job to be running', async () => (await job(acmeKey!, ids[0]!)).status === 'running');
  const first = exited(child);
  process.kill(-child.pid!, 'SIGINT');
  const stop1 = await first;
  expect(stop1).toMatchObject({ code: 0, signal: null });
  expect(stop1.ms).toBeLessThan(JOB_DELAY_MS + 3000);
  // One shutdown, not a forced exit: a relayed copy of the signal is not a second Ctrl-C.
  expect(output).not.toContain('exiting at once');
  expect(existsSync(serverPidFile())).toBe(false);

  // 3. After a restart every job completes with one attempt: nothing waited for a lease (120 s).
  child = start();
  await healthy();
  for (const id of ids) {
    const done = await waitFor(`job ${id} to complete`, async () => {
      const j = await job(acmeKey!, id);
      return j.status === 'completed' && j;
    });
    expect(done.attempts).toBe(1);
  }

  // The embedded server dies under it: local mode starts it again and the API recovers by itself.
  const serverPid = Number(readFileSync(serverPidFile(), 'utf8').split('\n')[0]);
  process.kill(serverPid, 'SIGKILL');
  await waitFor('the API to answer 503 without its database', async () => (await fetch(url('/health'))).status === 503);
  await healthy();
  await waitFor('the restart to be reported', async () => /the embedded PostgreSQL server is back/.test(output));
  const afterRestart = await upload(acmeKey!, DOC(4));
  await waitFor('a job after the server restart to complete', async () => (await job(acmeKey!, afterRestart)).status === 'completed');

  // 4. SIGTERM to the process alone: the same clean exit.
  const second = exited(child);
  process.kill(child.pid!, 'SIGTERM');
  expect(await second).toMatchObject({ code: 0, signal: null });
  expect(existsSync(serverPidFile())).toBe(false);

  // 5. SIGKILL to the group: the embedded server lives on in its own session; the next start reuses it.
  child = start();
  await healthy();
  const killed = exited(child);
  process.kill(-child.pid!, 'SIGKILL');
  await killed;
  expect(existsSync(serverPidFile())).toBe(true);
  output = '';
  child = start();
  await healthy();
  expect(output).toMatch(/reusing the embedded PostgreSQL server an earlier run left running \(pid \d+, port \d+\)/);
  expect(output).not.toMatch(/TypeError|\n\s+at /);
  const last = exited(child);
  process.kill(-child.pid!, 'SIGINT');
  expect(await last).toMatchObject({ code: 0, signal: null });
  expect(existsSync(serverPidFile())).toBe(false);
  child = null;
}, 60_000);
