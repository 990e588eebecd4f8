import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { createTestDatabase } from './support/db';
import { startLocal, type LocalProcess } from './support/local-process';
import { privateClusterUnavailable, startPrivateCluster } from './support/private-cluster';
import { installCompletionAudit } from './support/processor';

/**
 * Local mode (`npm start`) as a user runs it, against a database that drops
 * its connections or goes away: the process lives, the API answers 503 with
 * Retry-After meanwhile, and no accepted job is lost, completed twice, failed
 * for good or charged an attempt because of the outage.
 */

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ARTICLE = readFileSync(join(__dirname, 'fixtures', 'docs', 'readme.md'), 'utf8');

async function upload(local: LocalProcess, body: string, query = ''): Promise<Response | null> {
  return fetch(`${local.url}/uploads${query}`, {
    method: 'POST',
    headers: { 'x-api-key': local.devKey, 'content-type': 'text/markdown' },
    body,
  }).catch(() => null);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pause(200);
  }
}

async function jobStates(url: string): Promise<Map<string, { status: string; attempts: number }>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; status: string; attempts: number }>('SELECT id, status, attempts FROM summary_jobs');
    return new Map(rows.map((r) => [r.id, { status: r.status, attempts: r.attempts }]));
  } finally {
    await client.end();
  }
}

describe('local mode while the database drops every connection twice a second', () => {
  it('lives, answers /health afterwards, and completes every accepted upload exactly once', async () => {
    const db = await createTestDatabase();
    await installCompletionAudit(db.pool);
    const local = await startLocal({ DATABASE_URL: db.url, PROCESSOR_INTERVAL_MS: '300', LEASE_SECONDS: '20', HEARTBEAT_SECONDS: '2' });
    try {
      const accepted: string[] = [];
      const statuses = new Map<number, number>();
      let uploading = true;
      const uploader = (async () => {
        for (let i = 0; uploading; i++) {
          const res = await upload(local, `# Document ${i}\n\n${ARTICLE}`);
          if (res) {
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
            if (res.status === 202) accepted.push(((await res.json()) as { id: string }).id);
            else await res.text();
          }
          await pause(20);
        }
      })();
      for (let i = 0; i < 20; i++) {
        await db.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'summary-jobs'`, [db.name]);
        await pause(500);
      }
      uploading = false;
      await uploader;

      expect(local.child.exitCode).toBeNull();
      expect((await fetch(`${local.url}/health`)).status).toBe(200);
      // Every answer was an acceptance or an honest "try again": never a 500.
      expect([...statuses.keys()].filter((s) => s !== 202 && s !== 503)).toEqual([]);
      expect(accepted.length).toBeGreaterThan(20);

      await waitFor(
        'every accepted job to complete',
        async () => {
          const states = await jobStates(db.url);
          return accepted.every((id) => states.get(id)?.status === 'completed') ? true : undefined;
        },
        45_000,
      );
      const { rows } = await db.pool.query<{ job_id: string; n: number }>('SELECT job_id, count(*)::int AS n FROM completion_audit GROUP BY job_id');
      expect(rows.filter((r) => r.n !== 1)).toEqual([]);
      // (An upload whose answer was lost with its connection may also exist and complete: it is not in `accepted`.)
      const audited = new Set(rows.map((r) => r.job_id));
      expect(accepted.filter((id) => !audited.has(id))).toEqual([]);
    } finally {
      await local.kill();
      await db.drop();
    }
  }, 90_000);
});

const unavailable = privateClusterUnavailable();
(unavailable ? describe.skip : describe)('local mode while the database is stopped for a few seconds', () => {
  it('answers 503 with Retry-After, fires the database-error alarm, and no job fails or loses an attempt', async () => {
    const cluster = await startPrivateCluster();
    const local = await startLocal({ DATABASE_URL: cluster.url(), PROCESSOR_INTERVAL_MS: '300', LEASE_SECONDS: '20', HEARTBEAT_SECONDS: '2' });
    try {
      // Long documents, one attempt each: a job charged an attempt by the outage fails for good.
      const big = Array.from({ length: 40 }, () => ARTICLE).join('\n\n');
      const accepted: string[] = [];
      for (let i = 0; i < 40; i++) {
        const res = await upload(local, `# Report ${i}\n\n${big}`, '?maxAttempts=1');
        expect(res?.status).toBe(202);
        accepted.push(((await res!.json()) as { id: string }).id);
      }
      // The outage must find work in flight, or the test proves nothing.
      const before = await jobStates(cluster.url());
      const unfinished = accepted.filter((id) => before.get(id)?.status !== 'completed');
      expect(unfinished.length).toBeGreaterThan(0);
      await cluster.stop();
      const during: { status: number; retryAfter: string | null; type: string | undefined }[] = [];
      const outageEnds = Date.now() + 4_000;
      while (Date.now() < outageEnds) {
        const started = Date.now();
        const res = await upload(local, 'A short note. It has two sentences.');
        if (res) {
          const body = (await res.json().catch(() => ({}))) as { type?: string };
          during.push({ status: res.status, retryAfter: res.headers.get('retry-after'), type: body.type });
        }
        // A connection refused is answered at once, not after a long hang.
        expect(Date.now() - started).toBeLessThan(10_000);
        await pause(250);
      }
      await cluster.start();

      expect(during.length).toBeGreaterThan(3);
      expect(during.every((d) => d.status === 503 && Number(d.retryAfter) > 0)).toBe(true);
      expect(local.child.exitCode).toBeNull();

      const states = await waitFor(
        'every job to finish',
        async () => {
          const s = await jobStates(cluster.url());
          return accepted.every((id) => ['completed', 'failed'].includes(s.get(id)?.status ?? '')) ? s : undefined;
        },
        45_000,
      );
      expect(accepted.filter((id) => states.get(id)!.status !== 'completed')).toEqual([]);
      expect(accepted.filter((id) => states.get(id)!.attempts !== 1)).toEqual([]);

      const alerts = await waitFor(
        'the database-error alarm',
        async () => {
          const lines = readFileSync(local.alertsFile, 'utf8').trim().split('\n').filter(Boolean);
          const parsed = lines.map((l) => JSON.parse(l) as { alarm?: string; name?: string; state?: string });
          return parsed.some((a) => /DatabaseErrors/.test(a.alarm ?? a.name ?? '') && a.state === 'ALARM') ? parsed : undefined;
        },
        30_000,
      );
      expect(alerts.length).toBeGreaterThan(0);
    } finally {
      await local.kill();
      await cluster.destroy();
    }
  }, 120_000);
});
