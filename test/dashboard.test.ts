import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createDashboardRoutes, dashboardRoutes } from '../lambda/api/dashboard';
import { createApiHandler } from '../lambda/api/routes';
import { createClient } from '../lambda/core/clients';
import { apiConfig } from '../lambda/core/config';
import { dashboardData } from '../lambda/core/dashboard-data';
import { withTransaction, type Db } from '../lambda/core/db';
import { setRateLimit } from '../lambda/core/limits';
import { logger } from '../lambda/core/logger';
import { cancelJob, claimJobs, completeJobs, enqueueJobs, failJobs, type ClaimedJob, type NewJob } from '../lambda/core/queue';
import { startHttpServer, type RunningHttpServer } from '../lambda/local/http';
import { ADMIN_KEY, apiEvent, testApi } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/db';

/**
 * The operator dashboard: the numbers of dashboardData against a database
 * filled through the queue functions, the admin guard on its JSON, the indexes
 * its SQL reads through, and the page itself in a real headless Chromium.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const lease = (j: ClaimedJob) => ({ id: j.id, token: j.leaseToken });

async function enqueue(db: Db, jobs: NewJob[]): Promise<string[]> {
  return (await enqueueJobs(db, jobs)).map((r) => r.job.id);
}

/** Claims everything runnable and returns it by id. */
async function claimAll(db: Db): Promise<Map<string, ClaimedJob>> {
  const claimed = await claimJobs(db, { workerId: 'worker-1', limit: 100, leaseSeconds: 300 });
  return new Map(claimed.map((j) => [j.id, j]));
}

// ---------------------------------------------------------------------------

describe('dashboardData', () => {
  let db: TestDatabase;
  const ids: Record<string, string> = {};
  let acme: string;
  let bravo: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    acme = (await createClient(db.pool, 'acme')).client.id;
    bravo = (await createClient(db.pool, 'bravo')).client.id;

    // Jobs that run: all claimed at once, then each sent to its outcome.
    const [a1, a2, a3, a4, a5, a6, a7] = await enqueue(
      db.pool,
      Array.from({ length: 7 }, () => ({ clientId: acme, jobType: 'summarize' })),
    );
    const [b1, b2] = await enqueue(db.pool, [
      { clientId: bravo, jobType: 'digest' },
      { clientId: bravo, jobType: 'digest' },
    ]);
    Object.assign(ids, { a1, a2, a3, a4, a5, a6, a7, b1, b2 });
    const held = await claimAll(db.pool);
    expect(held.size).toBe(9);
    const l = (id: string) => lease(held.get(id)!);
    await completeJobs(db.pool, [a1, a2, a6, a7].map((id) => ({ ...l(id), result: { summary: 'ok' } })));
    await failJobs(db.pool, [{ ...l(a3!), error: 'document is empty', retryable: false }]);
    await failJobs(db.pool, [{ ...l(b1!), error: 'digest: no uploads in window', retryable: false }]);
    // Retryable: back in the queue with a backoff, so "scheduled".
    await failJobs(db.pool, [{ ...l(a5!), error: 'model throttled', retryable: true }]);
    // a4 keeps a live lease; b2's worker vanished two minutes ago.
    await db.pool.query(`UPDATE summary_jobs SET lease_expires_at = now() - interval '2 minutes' WHERE id = $1`, [b2]);
    // a6 finished before the window, a7 ten minutes ago.
    await db.pool.query(`UPDATE summary_jobs SET finished_at = now() - interval '2 hours' WHERE id = $1`, [a6]);
    await db.pool.query(`UPDATE summary_jobs SET finished_at = now() - interval '10 minutes' WHERE id = $1`, [a7]);

    const [c1] = await enqueue(db.pool, [{ clientId: acme }]);
    await cancelJob(db.pool, c1!, null);
    ids.c1 = c1!;

    // The backlog: runnable, scheduled for later, waiting for a4.
    const queued = await enqueue(db.pool, [
      { clientId: acme },
      { clientId: acme },
      { clientId: acme },
      { clientId: bravo, jobType: 'summarize', priority: 5 },
      { clientId: acme, runAt: new Date(Date.now() + 3600_000) },
    ]);
    ids.first = queued[3]!;
    const waiting = await withTransaction(db.pool, (tx) => enqueue(tx, [{ clientId: acme, dependsOn: [a4!] }]));
    ids.waiting = waiting[0]!;
  });
  afterAll(async () => {
    await db.drop();
  });

  it('counts the queue by state, and finished jobs inside the window only', async () => {
    const d = await dashboardData(db.pool);
    expect(d.windowMinutes).toBe(60);
    expect(d.stats).toMatchObject({
      queued: 4,
      scheduled: 2,
      waiting: 1,
      running: 2,
      stuck: 1,
      completed: 3,
      failed: 2,
      cancelled: 1,
      windowSeconds: 3600,
    });
    expect(d.stats.oldestRunnableAgeSeconds).toBeGreaterThanOrEqual(0);
    expect(d.stats.oldestRunnableAgeSeconds).toBeLessThan(30);
    expect(d.failureRate).toBeCloseTo(2 / 5);

    const wide = await dashboardData(db.pool, { windowMinutes: 180 });
    expect(wide.stats.completed).toBe(4);
    expect(wide.series).toHaveLength(181);
  });

  it('gives one point per minute over the window, summing to the window totals', async () => {
    const d = await dashboardData(db.pool);
    // From the minute of (now - 60 min) to the current one, both partial.
    expect(d.series).toHaveLength(61);
    const minutes = d.series.map((p) => Date.parse(p.minute));
    minutes.slice(1).forEach((m, i) => expect(m - minutes[i]!).toBe(60_000));
    const sum = (k: 'completed' | 'failed' | 'cancelled') => d.series.reduce((n, p) => n + p[k], 0);
    expect([sum('completed'), sum('failed'), sum('cancelled')]).toEqual([3, 2, 1]);

    const { rows } = await db.pool.query(`SELECT date_trunc('minute', finished_at) AS m FROM summary_jobs WHERE id = $1`, [ids.a7]);
    const tenAgo = d.series.find((p) => p.minute === (rows[0].m as Date).toISOString())!;
    expect(tenAgo).toEqual({ minute: tenAgo.minute, completed: 1, failed: 0, cancelled: 0, failureRate: 0 });
    const empty = d.series.find((p) => p.completed + p.failed + p.cancelled === 0)!;
    expect(empty.failureRate).toBeNull();
  });

  it('lists stuck jobs with their client, lease owner and how long the lease has been expired', async () => {
    const d = await dashboardData(db.pool);
    expect(d.stuckJobs).toHaveLength(1);
    const [stuck] = d.stuckJobs;
    expect(stuck).toMatchObject({ id: ids.b2, clientId: bravo, clientName: 'bravo', jobType: 'digest', leaseOwner: 'worker-1', attempts: 1 });
    expect(stuck!.expiredForSeconds).toBeGreaterThanOrEqual(119);
    expect(stuck!.expiredForSeconds).toBeLessThan(180);
  });

  it('breaks the queue and the window down per client and per job type', async () => {
    const d = await dashboardData(db.pool);
    // acme's queued: 3 runnable, 1 scheduled, 1 waiting, a5 waiting for its retry.
    expect(d.clients).toEqual([
      { clientId: acme, clientName: 'acme', queued: 6, running: 1, completed: 3, failed: 1, cancelled: 1 },
      { clientId: bravo, clientName: 'bravo', queued: 1, running: 1, completed: 0, failed: 1, cancelled: 0 },
    ]);
    expect(d.jobTypes).toEqual([
      { jobType: 'digest', queued: 0, running: 1, completed: 0, failed: 1, cancelled: 0 },
      { jobType: 'summarize', queued: 7, running: 1, completed: 3, failed: 1, cancelled: 1 },
    ]);
  });

  it('lists the latest failures, newest first, with their errors', async () => {
    const d = await dashboardData(db.pool);
    expect(d.latestFailures.map((f) => f.id)).toEqual([ids.b1, ids.a3]);
    expect(d.latestFailures[0]).toMatchObject({
      clientId: bravo,
      clientName: 'bravo',
      jobType: 'digest',
      attempts: 1,
      maxAttempts: 5,
      lastError: 'digest: no uploads in window',
    });
    expect(Date.parse(d.latestFailures[0]!.finishedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(d.latestFailures[1]!.lastError).toBe('document is empty');
    // The attempt history: one failed attempt, the final one.
    expect(d.latestFailures[1]!.attemptErrors).toEqual([{ at: expect.any(String), attempt: 1, error: 'document is empty', retryable: false }]);
    expect(Date.parse(d.latestFailures[1]!.attemptErrors[0]!.at)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('shows the head of the runnable queue in claim order', async () => {
    const d = await dashboardData(db.pool);
    expect(d.nextJobs).toHaveLength(4);
    expect(d.nextJobs[0]).toMatchObject({ id: ids.first, clientName: 'bravo', priority: 5 });
    expect(d.nextJobs.slice(1).map((j) => j.clientName)).toEqual(['acme', 'acme', 'acme']);
  });

  it('refuses a window it cannot serve, naming the option', async () => {
    for (const windowMinutes of [0, -5, 1.5, 1441, Number.NaN]) {
      await expect(dashboardData(db.pool, { windowMinutes })).rejects.toThrow(/windowMinutes/);
    }
  });

  // Last in this block: it adds 50,000 old finished jobs.
  it('reads summary_jobs through its indexes only, even with a long history', async () => {
    await db.pool.query(
      `INSERT INTO summary_jobs (id, client_id, status, finished_at, created_at)
       SELECT gen_random_uuid(), $1, 'completed', now() - interval '3 days' + g * interval '1 second', now() - interval '4 days'
       FROM generate_series(1, 50000) g`,
      [acme],
    );
    await db.pool.query('ANALYZE summary_jobs');
    const seen: { text: string; values: unknown[] }[] = [];
    const recorder = {
      query: (text: string, values: unknown[]) => {
        seen.push({ text, values });
        return db.pool.query(text, values);
      },
    } as unknown as Db;
    await dashboardData(recorder);
    expect(seen).toHaveLength(2);

    const scans: string[] = [];
    const indexes = new Set<string>();
    const walk = (node: Record<string, unknown>) => {
      if (node['Relation Name'] === 'summary_jobs') scans.push(String(node['Node Type']));
      if (typeof node['Index Name'] === 'string') indexes.add(node['Index Name']);
      for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
    };
    for (const q of seen) {
      const { rows } = await db.pool.query(`EXPLAIN (FORMAT JSON) ${q.text}`, q.values);
      walk(rows[0]['QUERY PLAN'][0].Plan);
    }
    expect(scans).not.toContain('Seq Scan');
    expect(scans.length).toBeGreaterThan(5);
    expect([...indexes]).toEqual(
      expect.arrayContaining(['summary_jobs_finished', 'summary_jobs_leases', 'summary_jobs_waiting']),
    );
    expect([...indexes].some((i) => i === 'summary_jobs_runnable' || i === 'summary_jobs_client_runnable')).toBe(true);
  });
});

// ---------------------------------------------------------------------------

describe('dashboardData: rate limits, retry, alarms', () => {
  let db: TestDatabase;
  let acme: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    acme = (await createClient(db.pool, 'acme')).client.id;
  });
  afterAll(async () => {
    await db.drop();
  });

  it('shows each rate limit with what it allows, what runs, and the runnable jobs it holds back', async () => {
    await enqueue(db.pool, Array.from({ length: 5 }, () => ({ clientId: acme, jobType: 'summarize' })));
    await enqueue(db.pool, [{ clientId: acme, jobType: 'summarize', runAt: new Date(Date.now() + 3600_000) }]);
    await setRateLimit(db.pool, { scope: 'client', key: acme, maxPerInterval: 3, intervalSeconds: 120, maxRunning: null });
    await setRateLimit(db.pool, { scope: 'job_type', key: 'summarize', maxPerInterval: null, intervalSeconds: 60, maxRunning: 4 });
    // Two of acme's three starts in this interval are spent; one job runs.
    await db.pool.query(`UPDATE rate_limits SET window_start = now(), started_in_window = 2 WHERE scope = 'client'`);
    const [running] = await enqueue(db.pool, [{ clientId: acme, jobType: 'summarize', priority: 100 }]);
    const claimed = await claimJobs(db.pool, { workerId: 'w', limit: 1, leaseSeconds: 300 });
    expect(claimed.map((j) => j.id)).toEqual([running]);

    const d = await dashboardData(db.pool);
    expect(d.rateLimits).toEqual([
      // 5 runnable (the scheduled one is not), one start left: 4 held.
      { scope: 'client', key: acme, clientName: 'acme', maxPerInterval: 3, intervalSeconds: 120, startedInInterval: 2, maxRunning: null, running: 1, runnable: 5, held: 4 },
      // 3 of 4 slots free: it holds 2 of the 5.
      { scope: 'job_type', key: 'summarize', clientName: null, maxPerInterval: null, intervalSeconds: 60, startedInInterval: 0, maxRunning: 4, running: 1, runnable: 5, held: 2 },
    ]);
    // An interval that has ended counts no starts.
    await db.pool.query(`UPDATE rate_limits SET window_start = now() - interval '1 hour' WHERE scope = 'client'`);
    expect((await dashboardData(db.pool)).rateLimits[0]).toMatchObject({ startedInInterval: 0, held: 2 });
  });

  it('offers Retry for a job failed by its dependency only once that dependency has completed', async () => {
    const [parent] = await enqueue(db.pool, [{ clientId: acme, jobType: 'parent', priority: 100 }]);
    const [child] = await withTransaction(db.pool, (tx) => enqueue(tx, [{ clientId: acme, jobType: 'child', dependsOn: [parent!] }]));
    const [p] = await claimJobs(db.pool, { workerId: 'w', limit: 1, leaseSeconds: 300 });
    expect(p!.id).toBe(parent);
    await failJobs(db.pool, [{ ...lease(p!), error: 'document is empty', retryable: false }]);

    const failures = (await dashboardData(db.pool)).latestFailures;
    expect(failures.find((f) => f.id === child)).toMatchObject({ retryable: false, retryBlockedBy: parent, lastError: expect.stringContaining(parent!) });
    expect(failures.find((f) => f.id === parent)).toMatchObject({ retryable: true, retryBlockedBy: null });

    // The parent is retried and completes: now the child's retry can work.
    await db.pool.query(`UPDATE summary_jobs SET status = 'completed', finished_at = now(), result = '{}' WHERE id = $1`, [parent]);
    const after = (await dashboardData(db.pool)).latestFailures;
    expect(after.find((f) => f.id === child)).toMatchObject({ retryable: true, retryBlockedBy: null });
  });

  it('links to the CloudWatch alarms by default, and shows the alarms it is given', async () => {
    expect((await dashboardData(db.pool)).alarms).toEqual({ source: 'cloudwatch', consoleUrl: expect.stringMatching(/^https:\/\/[a-z0-9-]+\.console\.aws\.amazon\.com\/cloudwatch\//) });
    const firing = [{ alarm: 'DatabaseErrors', since: new Date().toISOString(), reason: 'r', description: 'd' }];
    expect((await dashboardData(db.pool, { alarms: { source: 'local', firing } })).alarms).toEqual({ source: 'local', firing });
  });
});

// ---------------------------------------------------------------------------

describe('GET /admin/dashboard and GET /dashboard', () => {
  let db: TestDatabase;
  let api: ReturnType<typeof testApi>;
  let clientKey: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = testApi(db.pool, { extraRoutes: dashboardRoutes });
    const { client, apiKey } = await createClient(db.pool, 'acme');
    clientKey = apiKey;
    await enqueue(db.pool, [{ clientId: client.id }, { clientId: client.id }]);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('needs the admin key: 401 without a key, 403 with a client key', async () => {
    const none = await api.call(apiEvent('GET', '/admin/dashboard'));
    expect(none.statusCode).toBe(401);
    expect(none.json).toMatchObject({ status: 401, type: expect.stringContaining('missing-api-key') });
    const client = await api.call(apiEvent('GET', '/admin/dashboard', { headers: { 'x-api-key': clientKey } }));
    expect(client.statusCode).toBe(403);
    expect(client.json).toMatchObject({ status: 403, type: expect.stringContaining('admin-only') });
  });

  it('answers the admin with the dashboard data', async () => {
    const res = await api.call(apiEvent('GET', '/admin/dashboard', { headers: { 'x-api-key': ADMIN_KEY }, query: { windowMinutes: '15' } }));
    expect(res.statusCode).toBe(200);
    expect(res.headers!['cache-control']).toBe('no-store');
    expect(res.json).toMatchObject({ windowMinutes: 15, stats: { queued: 2 }, clients: [{ clientName: 'acme', queued: 2 }] });
    expect(res.json.series).toHaveLength(16);
  });

  it('answers 400 for a window that is not 1..1440 minutes', async () => {
    for (const windowMinutes of ['0', '1441', 'abc', '10.5', '-1']) {
      const res = await api.call(apiEvent('GET', '/admin/dashboard', { headers: { 'x-api-key': ADMIN_KEY }, query: { windowMinutes } }));
      expect(res.statusCode).toBe(400);
      expect(res.json.detail).toMatch(/windowMinutes/);
    }
  });

  it('serves the page without a key; the page holds no data and its CSP admits only its own inline blocks', async () => {
    const res = await api.handler(apiEvent('GET', '/dashboard'));
    expect(res.statusCode).toBe(200);
    expect(res.headers!['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).not.toContain('acme');
    expect(res.body).not.toContain(ADMIN_KEY);
    // No markup sinks, and nothing fetched from elsewhere (the SVG namespace is a name, not a fetch;
    // 'https:' is the one protocol the alarms link may have).
    expect(res.body).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    expect(res.body.replaceAll('http://www.w3.org/2000/svg', '').replaceAll("'https:'", '')).not.toMatch(/https?:|\/\/[a-z]/i);
    const csp = String(res.headers!['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
    const script = /<script>([\s\S]*?)<\/script>/.exec(res.body)![1]!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(res.body)![1]!;
    expect(csp).toContain(`script-src ${hash(script)}`);
    expect(csp).toContain(`style-src ${hash(style)}`);
    expect(res.body.match(/<script/g)).toHaveLength(1);
    expect(res.body).not.toMatch(/ style=| on[a-z]+=/);
  });
});

// ---------------------------------------------------------------------------

describe('the dashboard page in headless Chromium', () => {
  let db: TestDatabase;
  let server: RunningHttpServer;
  let browser: Browser;
  let page: Page;
  let failedId: string;
  let blockedId: string | undefined;
  const consoleErrors: string[] = [];
  const dialogs: string[] = [];
  // Text from the database that would run if it were ever parsed as markup.
  const ERROR_TEXT = 'summarizer crashed: <img src=x onerror="window.__xss=1"> & "quotes" </td><b>bold</b>';
  const ALARM_TEXT = 'The database went away. <img src=x onerror="window.__xss=3">';

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is not installed at ${CHROMIUM}; the dashboard browser test needs it. ` +
          'Install it with: apt-get update && apt-get install -y chromium (or set CHROMIUM_PATH).',
      );
    }
    db = await createTestDatabase();
    const acme = (await createClient(db.pool, 'acme')).client.id;
    const bravo = (await createClient(db.pool, 'bravo')).client.id;
    const [toFail, toRun] = await enqueue(db.pool, [
      { clientId: acme, jobType: '<script>window.__xss=2</script>' },
      { clientId: bravo, jobType: 'digest' },
    ]);
    // A job that depends on the one about to fail: it fails with it, and cannot be retried on its own.
    [blockedId] = await withTransaction(db.pool, (tx) => enqueue(tx, [{ clientId: acme, dependsOn: [toFail!] }]));
    const held = await claimAll(db.pool);
    await failJobs(db.pool, [{ ...lease(held.get(toFail!)!), error: ERROR_TEXT, retryable: false }]);
    expect(held.has(toRun!)).toBe(true);
    failedId = toFail!;
    await enqueue(db.pool, [{ clientId: acme }, { clientId: acme }]);
    // acme's one start per interval is spent: both of its runnable jobs are held.
    await setRateLimit(db.pool, { scope: 'client', key: acme, maxPerInterval: 1, intervalSeconds: 300, maxRunning: null });
    await db.pool.query(`UPDATE rate_limits SET window_start = now(), started_in_window = 1`);

    const handler = createApiHandler({
      pool: async () => db.pool,
      adminKey: async () => ADMIN_KEY,
      nudge: async () => undefined,
      logger,
      config: apiConfig({ MAX_UPLOAD_BYTES: String(64 * 1024) }),
      // As local mode wires it: the alarm panel lists what its evaluator has firing.
      extraRoutes: createDashboardRoutes({
        alarms: () => ({
          source: 'local',
          firing: [{ alarm: 'DatabaseErrors', since: new Date(Date.now() - 90_000).toISOString(), reason: 'DatabaseErrors Sum breached', description: ALARM_TEXT }],
        }),
      }),
    });
    server = await startHttpServer(handler, { port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 15_000 });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await db?.drop();
  });

  const text = (testid: string) => page.locator(`[data-testid="${testid}"]`).first().textContent();
  const waitForText = (testid: string, expected: string, timeout = 6000) =>
    page.waitForFunction(
      ([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.textContent === want,
      [testid, expected] as const,
      { timeout },
    );
  const dbCount = async (where: string) =>
    String((await db.pool.query(`SELECT count(*)::int AS n FROM summary_jobs WHERE ${where}`)).rows[0].n);

  it('shows the queue, lets the operator retry a failure and cancel a queued job, and refreshes itself', async () => {
    const response = await page.goto(`${server.url}/dashboard`);
    expect(response!.status()).toBe(200);
    expect(response!.headers()['content-security-policy']).toContain("script-src 'sha256-");

    // A wrong key is refused and asked for again.
    await page.locator('[data-testid="admin-key-input"]').fill('not-the-admin-key');
    await page.locator('[data-testid="admin-key-submit"]').click();
    await page.locator('[data-testid="login-problem"]').waitFor({ state: 'visible', timeout: 4000 });
    expect(await text('login-problem')).toContain('401');
    expect(consoleErrors.every((e) => /status of 401/.test(e))).toBe(true);
    consoleErrors.length = 0;

    await page.locator('[data-testid="admin-key-input"]').fill(ADMIN_KEY);
    await page.locator('[data-testid="admin-key-submit"]').click();
    await waitForText('count-queued', await dbCount(`status = 'queued' AND pending_dependencies = 0 AND run_at <= now()`));
    expect(await page.evaluate(() => sessionStorage.getItem('summary-jobs.admin-key'))).toBe(ADMIN_KEY);

    // The numbers are the database's.
    expect(await text('count-queued')).toBe('2');
    expect(await text('count-running')).toBe(await dbCount(`status = 'running'`));
    expect(await text('count-running')).toBe('1');
    expect(await text('count-failed')).toBe(await dbCount(`status = 'failed' AND finished_at > now() - interval '1 hour'`));
    expect(await text('count-failed')).toBe('2');
    expect(await text('count-stuck')).toBe('0');
    expect(await text('failure-rate')).toBe('100.0%');
    expect(await page.locator('[data-testid="client-row"]').count()).toBe(2);
    expect(await page.locator('[data-testid="next-row"]').count()).toBe(2);
    expect(await page.locator('[data-testid="chart-throughput"] rect.bar-fail').count()).toBe(1);

    // The failure, with its error as text: nothing in it became markup.
    const row = page.locator(`[data-testid="failure-row"][data-job-id="${failedId}"]`);
    expect(await row.locator('[data-testid="failure-error"]').textContent()).toBe(ERROR_TEXT);
    expect(await row.textContent()).toContain('<script>window.__xss=2</script>');
    expect(await page.locator('[data-testid="failure-rows"] img, [data-testid="failure-rows"] b, main script').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();

    // Its attempt history, behind a disclosure, as text too.
    await row.locator('[data-testid="attempt-history"] summary').click();
    expect(await row.locator('[data-testid="attempt"]').count()).toBe(1);
    expect(await row.locator('[data-testid="attempt"]').textContent()).toContain(`final: ${ERROR_TEXT}`);

    // The job failed with its dependency offers no Retry while that dependency has not completed.
    const blocked = page.locator(`[data-testid="failure-row"][data-job-id="${blockedId}"]`);
    expect(await blocked.locator('[data-testid="retry-button"]').count()).toBe(0);
    expect(await blocked.locator('[data-testid="retry-blocked"]').textContent()).toBe(`waits on ${failedId}`);

    // The rate limit and what it holds; the firing alarm with its text as text.
    expect(await text('count-held')).toBe('2');
    const limit = page.locator('[data-testid="limit-row"]');
    expect(await limit.count()).toBe(1);
    expect(await limit.locator('[data-col="interval"]').textContent()).toBe('1 / 1 per 5m 0s');
    expect(await limit.locator('[data-col="held"]').textContent()).toBe('2');
    const alarm = page.locator('[data-testid="alarm-row"][data-alarm="DatabaseErrors"]');
    expect(await alarm.textContent()).toContain(ALARM_TEXT);
    expect(await page.locator('[data-testid="alarms-panel"] img').count()).toBe(0);

    // Retry: the job is queued again with a fresh set of attempts, and the page says so.
    await row.locator('[data-testid="retry-button"]').click();
    await waitForText('count-queued', '3');
    await row.waitFor({ state: 'detached', timeout: 4000 });
    expect(await text('count-failed')).toBe('1');
    expect(await text('status-message')).toContain('queued again');
    const { rows } = await db.pool.query(`SELECT status, attempts FROM summary_jobs WHERE id = $1`, [failedId]);
    expect(rows[0]).toEqual({ status: 'queued', attempts: 0 });

    // Cancel takes a second click to confirm.
    const next = page.locator('[data-testid="next-row"]').last();
    const cancelId = (await next.getAttribute('data-job-id'))!;
    await next.locator('[data-testid="cancel-button"]').click();
    expect(await next.locator('[data-testid="cancel-button"]').textContent()).toBe('Confirm cancel');
    expect((await db.pool.query(`SELECT status FROM summary_jobs WHERE id = $1`, [cancelId])).rows[0].status).toBe('queued');
    await next.locator('[data-testid="cancel-button"]').click();
    await waitForText('count-cancelled', '1');
    expect(await text('count-queued')).toBe('2');
    expect((await db.pool.query(`SELECT status FROM summary_jobs WHERE id = $1`, [cancelId])).rows[0].status).toBe('cancelled');

    // Nobody clicks: the 5-second refresh picks up a job enqueued behind the page's back.
    const acme = (await db.pool.query(`SELECT id FROM clients WHERE name = 'acme'`)).rows[0].id as string;
    await enqueue(db.pool, [{ clientId: acme, jobType: 'digest' }]);
    await waitForText('count-queued', '3', 8000);

    if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });
    expect(dialogs).toEqual([]);
    expect(consoleErrors).toEqual([]);
  }, 30_000);
});
