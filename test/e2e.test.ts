import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../lambda/local/embedded-postgres';
import { createTestDatabase, type TestDatabase } from './support/db';
import { installCompletionAudit } from './support/processor';

/**
 * Local mode end to end: `bin/local.ts` as a child process on a free port,
 * driven over HTTP like a client would, then killed with SIGKILL mid-batch
 * and restarted.
 */

const ROOT = join(__dirname, '..');
const DEV_KEY = `sj_dev_e2e_${randomBytes(8).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: TestDatabase;
let port: number;
let localDir: string;
let alertsFile: string;
let child: ChildProcess | null = null;
let output = '';

beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
  port = await freePort();
  localDir = mkdtempSync(join(tmpdir(), 'sj-e2e-'));
  alertsFile = join(localDir, 'alerts.jsonl');
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await db.drop();
});

function start(): ChildProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bin', 'local.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: db.url,
      DEV_API_KEY: DEV_KEY,
      ALERTS_FILE: alertsFile,
      LOCAL_DIR: localDir,
      PROCESSOR_INTERVAL_MS: '300',
      LEASE_SECONDS: '3',
      HEARTBEAT_SECONDS: '1',
      JOB_TIMEOUT_MS: '20000',
      BATCH_SIZE: '4',
      CONCURRENCY: '2',
      POWERTOOLS_LOG_LEVEL: 'WARN',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d) => (output += String(d)));
  proc.stderr!.on('data', (d) => (output += String(d)));
  return proc;
}

const url = (path: string) => `http://127.0.0.1:${port}${path}`;
const authed = { 'x-api-key': DEV_KEY };

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; local mode said:\n${output.slice(-3000)}`);
    await sleep(100);
  }
}

const health = () => waitFor('the API to answer', async () => (await fetch(url('/health'))).ok, 60_000);

async function upload(body: string | Buffer, type = 'text/plain'): Promise<string> {
  const res = await fetch(url('/uploads'), { method: 'POST', headers: { ...authed, 'content-type': type }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function job(id: string): Promise<{ status: string; result: { summary: string } | null; error: string | null }> {
  return (await (await fetch(url(`/jobs/${id}`), { headers: authed })).json()) as never;
}

const ESSAY = [
  'Lighthouses guided ships along dangerous coasts for centuries.',
  'Each lighthouse had a keeper who trimmed the wick and polished the lens every night.',
  'The Fresnel lens, invented in 1822, made the beams visible for more than twenty miles.',
  'Automation arrived in the twentieth century and the keepers slowly disappeared.',
  'Today most lighthouses are museums, and a few still shine for passing ships.',
].join(' ');

it('summarizes uploads, does not page for a corrupt PDF, and survives SIGKILL mid-batch with every job completed once', async () => {
  child = start();
  await health();
  await installCompletionAudit(db.pool);

  // 1. A client's first minutes: upload, poll, read the summary.
  const ids = [await upload(ESSAY), await upload(`# Lighthouses\n\n${ESSAY}`, 'text/markdown'), await upload(`<html><body><p>${ESSAY}</p><script>alert(1)</script></body></html>`, 'text/html')];
  for (const id of ids) {
    const done = await waitFor(`job ${id} to complete`, async () => {
      const j = await job(id);
      return j.status === 'completed' && j;
    });
    expect(done.result!.summary.length).toBeGreaterThan(20);
    expect(ESSAY).toContain(done.result!.summary.split(/(?<=\.)\s/)[0]!.trim());
  }

  // 2. A corrupt PDF fails for good at once with a reason the client can act on, and pages
  //    nobody: it is the client's document, not the system, that failed.
  const corruptPdf = Buffer.concat([Buffer.from('%PDF-1.7\n1 0 obj\n<< /Type /Catalog'), randomBytes(4000)]);
  const poison = await upload(corruptPdf, 'application/pdf');
  const failed = await waitFor('the corrupt PDF to fail', async () => {
    const j = await job(poison);
    return j.status === 'failed' && j;
  });
  expect(failed.error).toMatch(/pdf/i);
  // A job after it has completed, so the processor has long reported the failure.
  const after = await upload(ESSAY);
  await waitFor('the next job to complete', async () => (await job(after)).status === 'completed');
  const alerts = existsSync(alertsFile) ? readFileSync(alertsFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  expect(alerts.filter((a) => a.alarm === 'JobFailedForGood')).toEqual([]);

  // 3. SIGKILL in the middle of a batch of slow (large) documents, then restart.
  const big = Array.from({ length: 2500 }, (_, i) => `Sentence number ${i} talks about lighthouse keepers and their lamps.`).join(' ');
  const batch: string[] = [];
  for (let i = 0; i < 10; i++) batch.push(await upload(`${big} Document ${i}.`));
  await waitFor(
    'the batch to be part-way done',
    async () => {
      const { rows } = await db.pool.query(
        `SELECT count(*) FILTER (WHERE status = 'completed')::int AS done, count(*) FILTER (WHERE status = 'running')::int AS running
         FROM summary_jobs WHERE id = ANY($1::uuid[])`,
        [batch],
      );
      return rows[0].done >= 1 && rows[0].running >= 1;
    },
    60_000,
  );
  child.kill('SIGKILL');
  await new Promise((r) => child!.once('exit', r));
  const orphaned = (await db.pool.query(`SELECT count(*)::int AS n FROM summary_jobs WHERE status = 'running'`)).rows[0].n;
  expect(orphaned).toBeGreaterThan(0);

  child = start();
  await health();
  await waitFor(
    'every job of the batch to complete after the restart',
    async () => {
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM summary_jobs WHERE id = ANY($1::uuid[]) AND status = 'completed'`, [batch]);
      return rows[0].n === batch.length;
    },
    90_000,
  );
  const audit = await db.pool.query(
    `SELECT count(*)::int AS n, count(DISTINCT job_id)::int AS d FROM completion_audit WHERE job_id = ANY($1::uuid[])`,
    [batch],
  );
  // The audit trigger was installed before the batch: every completion of it is counted.
  expect(audit.rows[0]).toEqual({ n: batch.length, d: batch.length });
  const reaped = await db.pool.query(`SELECT count(*)::int AS n FROM summary_jobs WHERE id = ANY($1::uuid[]) AND attempts > 1`, [batch]);
  expect(reaped.rows[0].n).toBeGreaterThan(0);
  // The restarted process reaped the killed one's leases and said so, as the stack's alarm would.
  const reapAlert = await waitFor('the StuckJobsReaped alert', async () => {
    const lines = readFileSync(alertsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    return lines.find((a) => a.alarm === 'StuckJobsReaped' && a.state === 'ALARM');
  });
  expect(reapAlert.description).toMatch(/heartbeat/);

  // 4. Ctrl-C: a clean exit.
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child!.once('exit', (c) => r(c)));
  child = null;
  expect(code).toBe(0);
}, 240_000);
