/**
 * `npm start`: the whole system on one machine. The same handlers and core code
 * as in AWS; only the edges are local stand-ins:
 *   API Gateway  -> an HTTP server on PORT that builds proxy events
 *   EventBridge  -> a timer invoking the processor, plus the nudge after an upload
 *   RDS          -> DATABASE_URL, or an embedded PostgreSQL under LOCAL_DIR/pgdata
 *   Secrets Mgr  -> files under LOCAL_DIR/secrets
 *   CloudWatch + SNS -> the stack's alarm rules evaluated here, paging the console,
 *                    ALERTS_FILE and ALERT_WEBHOOK_URL
 *
 * This process owns shutdown (lambda/local/lifecycle.ts): on SIGINT, SIGTERM or
 * SIGHUP, to the process or to its whole group as Ctrl-C sends it, stop accepting
 * HTTP, let the processor finish its running jobs and release the ones it
 * claimed but did not start, close the pool, stop the embedded server, exit 0.
 * The same signal again forces the exit (130). An uncaught error delivers a
 * `LocalModeCrashed` alert, stops the same way and exits 1.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client } from 'pg';
import { createDashboardRoutes } from '../lambda/api/dashboard';
import { createApiHandler } from '../lambda/api/routes';
import { PROCESSOR_SCHEDULE_MINUTES } from '../lambda/core/alarm-rules';
import { createClient, findClientByName, hashApiKey } from '../lambda/core/clients';
import { apiConfig, ConfigError, processorConfig } from '../lambda/core/config';
import { closePool, getPool } from '../lambda/core/db';
import { logger } from '../lambda/core/logger';
import { ForwardingMetrics } from '../lambda/core/metrics';
import { migrate } from '../lambda/core/migrate';
import { runProcessor, type JobWork } from '../lambda/core/processor';
import { getSecretString, localSecretFile } from '../lambda/core/secrets';
import { createThreadedSummarizer, type ThreadedSummarizer } from '../lambda/core/summarize-pool';
import { jobWork } from '../lambda/core/work';
import { AlarmEvaluator, consoleSink, fileSink, webhookSink, type AlertSink } from '../lambda/local/alerts';
import { EmbeddedPostgresError, portIsFree, startEmbeddedPostgres, type RunningPostgres } from '../lambda/local/embedded-postgres';
import { lambdaContext, startHttpServer, type RunningHttpServer } from '../lambda/local/http';
import { installLifecycle } from '../lambda/local/lifecycle';
import { claimLocalDir, LocalDirInUseError, localDatabaseUrlFile, localDir, storedDatabasePort, writeLocalDatabaseUrl } from '../lambda/local/local-state';

const LOCAL_DIR = localDir();
const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST ?? '127.0.0.1';
// Local mode runs the processor more often than the stack's schedule, so a
// demo does not wait a minute; the nudge after each upload starts it at once.
const INTERVAL_MS = Number(process.env.PROCESSOR_INTERVAL_MS ?? 5000);
const PROCESSOR_TIMEOUT_MS = 5 * 60_000;
const DB_NAME = 'summary_jobs';
/** In-flight HTTP requests get this long to finish once the server stops accepting. */
const HTTP_DRAIN_MS = 2000;

/** Everything started so far; shutdown stops what exists, in order. */
const started: {
  embedded?: RunningPostgres;
  http?: RunningHttpServer;
  timers: NodeJS.Timeout[];
  processor: AbortController;
  current: Promise<unknown> | null;
  sinks: AlertSink[];
  pool: boolean;
  summarizer?: ThreadedSummarizer;
  releaseLocalDir?: () => void;
} = { timers: [], processor: new AbortController(), current: null, sinks: [consoleSink()], pool: false };

function localSecret(name: string, make: () => string): string {
  const dir = join(LOCAL_DIR, 'secrets');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = localSecretFile(dir, name);
  if (!existsSync(file)) writeFileSync(file, make(), { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

const embeddedServer = (port: number | undefined) =>
  startEmbeddedPostgres({ dataDir: join(LOCAL_DIR, 'pgdata'), persistent: true, port, onNotice: (line) => console.log(line) });

/**
 * The embedded server is part of local mode: if it dies (killed, out of
 * memory), it is started again on the same port and the pool reconnects by
 * itself; meanwhile the API answers 503 and DatabaseErrors fires.
 */
function watchEmbeddedServer(): void {
  let restarting = false;
  const timer = setInterval(() => {
    const server = started.embedded;
    if (!server || lifecycle.stopping() || restarting || server.running()) return;
    restarting = true;
    console.error(`the embedded PostgreSQL server (pid ${server.pid}) exited unexpectedly; starting it again on port ${server.port}`);
    embeddedServer(server.port)
      .then((again) => {
        started.embedded = again;
        console.error(`the embedded PostgreSQL server is back (pid ${again.pid})`);
      })
      .catch((err) => console.error(`starting the embedded PostgreSQL server again failed (${(err as Error).message}); trying again`))
      .finally(() => (restarting = false));
  }, 2000);
  timer.unref();
  started.timers.push(timer);
}

async function startDatabase(): Promise<void> {
  if (process.env.DATABASE_URL) return;
  // The port of the last run when it is still free, so the stored URL stays valid.
  const stored = storedDatabasePort(LOCAL_DIR);
  const server = await embeddedServer(Number(process.env.LOCAL_PG_PORT) || (stored && (await portIsFree(stored)) ? stored : undefined));
  started.embedded = server;
  watchEmbeddedServer();
  const admin = new Client({ connectionString: server.url('postgres') });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DB_NAME}`);
  } finally {
    await admin.end();
  }
  process.env.DATABASE_URL = server.url(DB_NAME);
  writeLocalDatabaseUrl(process.env.DATABASE_URL, LOCAL_DIR);
}

async function ensureDevClient(): Promise<string> {
  const pool = await getPool();
  const wanted = process.env.DEV_API_KEY || localSecret('dev-api-key', () => `sj_dev_${randomBytes(24).toString('base64url')}`);
  const existing = await findClientByName(pool, 'dev');
  if (!existing) {
    await createClient(pool, 'dev', { apiKey: wanted });
  } else {
    // DEV_API_KEY is a contract: the dev client has exactly that key.
    await pool.query('UPDATE clients SET api_key_hash = $2, key_prefix = $3, revoked_at = NULL WHERE id = $1', [
      existing.id,
      hashApiKey(wanted),
      wanted.slice(0, 7),
    ]);
  }
  return wanted;
}

/**
 * TEST ONLY: TEST_ONLY_JOB_DELAY_MS makes every job wait that long before it
 * works, so a test can signal local mode while a job is running. Never set it
 * otherwise.
 */
function withTestOnlyDelay(work: JobWork): JobWork {
  const ms = Number(process.env.TEST_ONLY_JOB_DELAY_MS ?? 0);
  if (!(ms > 0)) return work;
  return async (job, ctx) => {
    await delay(ms, undefined, { signal: ctx.signal });
    return work(job, ctx);
  };
}

async function main(): Promise<void> {
  started.releaseLocalDir = claimLocalDir(LOCAL_DIR);
  await startDatabase();
  process.env.LOCAL_SECRETS_DIR = join(LOCAL_DIR, 'secrets');
  const pool = await getPool();
  started.pool = true;
  const applied = await migrate(pool);
  if (applied.length) logger.info('migrations applied', { applied });

  const api = apiConfig();
  const adminKeyFile = localSecretFile(join(LOCAL_DIR, 'secrets'), api.adminSecretId);
  localSecret(api.adminSecretId, () => `sj_admin_${randomBytes(24).toString('base64url')}`);
  const devKey = await ensureDevClient();

  // Alerts: the stack's alarm rules, evaluated locally.
  if (process.env.ALERTS_FILE) started.sinks.push(fileSink(process.env.ALERTS_FILE));
  if (process.env.ALERT_WEBHOOK_URL) started.sinks.push(webhookSink(process.env.ALERT_WEBHOOK_URL));
  const alarms = new AlarmEvaluator(started.sinks);
  const metrics = new ForwardingMetrics((points) => alarms.record(points));
  started.timers.push(setInterval(() => alarms.evaluate(), 5_000));

  // The processor: a timer (EventBridge) plus nudges (async invokes), one run at a time.
  const config = processorConfig();
  // Summarizing runs in worker threads: the API keeps answering while a large document is read.
  const summarizer = (started.summarizer = createThreadedSummarizer(config));
  const work = withTestOnlyDelay(jobWork(pool, summarizer, config));
  const shutdown = started.processor.signal;
  let again = false;
  const invokeProcessor = (): void => {
    if (shutdown.aborted) return;
    if (started.current) {
      again = true;
      return;
    }
    // As the Lambda handler does: no key of an earlier run or request belongs on this run's lines.
    logger.resetKeys();
    // A failed run is logged and the next tick runs again: the worker part recovers by itself.
    started.current = runProcessor({ pool, config, logger, metrics, work }, lambdaContext('summary-jobs-processor', PROCESSOR_TIMEOUT_MS), shutdown)
      .catch((err) => logger.error('processor invocation failed', err as Error))
      .finally(() => {
        started.current = null;
        if (again) {
          again = false;
          invokeProcessor();
        }
      });
  };
  started.timers.push(setInterval(invokeProcessor, INTERVAL_MS));

  const handler = createApiHandler({
    pool: async () => pool,
    adminKey: () => getSecretString(api.adminSecretId),
    nudge: async () => invokeProcessor(),
    logger,
    metrics,
    config: api,
    // The dashboard's alarm panel shows what this process's evaluator has firing.
    extraRoutes: createDashboardRoutes({
      alarms: () => ({ source: 'local', firing: alarms.firing().map(({ alarm, since, reason, description }) => ({ alarm, since, reason, description })) }),
    }),
  });
  started.http = await startHttpServer(handler, { port: PORT, host: HOST }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE') throw new ConfigError(`port ${PORT} on ${HOST} is in use (another \`npm start\`?); set PORT to another port`);
    throw err;
  });
  if (lifecycle.stopping()) return;
  invokeProcessor();

  const url = started.http.url;
  console.log(`
summary-jobs is running (local mode)
  dashboard  ${url}/dashboard (paste the admin key)
  API        ${url}   (processor every ${INTERVAL_MS} ms here; every ${PROCESSOR_SCHEDULE_MINUTES} min in AWS)
  database   ${started.embedded ? `${process.env.DATABASE_URL}\n             embedded PostgreSQL (${started.embedded.origin === 'reused' ? 'reused, ' : ''}pid ${started.embedded.pid}), data in ${join(LOCAL_DIR, 'pgdata')}; URL kept in ${localDatabaseUrlFile(LOCAL_DIR)} for npm run clients / migrate` : 'DATABASE_URL'}
  dev key    ${devKey}
  admin key  in ${adminKeyFile}
  alerts     console${process.env.ALERTS_FILE ? `, ${process.env.ALERTS_FILE}` : ''}${process.env.ALERT_WEBHOOK_URL ? ', webhook' : ''}

Try it:
  curl -s -X POST ${url}/uploads -H 'x-api-key: ${devKey}' -H 'content-type: text/plain' --data-binary @README.md
Ctrl-C stops it: running jobs finish, claimed ones go back to the queue.
`);
}

/** Stops what was started, in order. Never throws: each step's failure is reported and the next step runs. */
async function stopInOrder(): Promise<void> {
  const step = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      console.error(`shutdown: ${what} failed: ${(err as Error).message}`);
    }
  };
  for (const t of started.timers) clearInterval(t);
  // 1. No new requests; in-flight ones get a moment to finish.
  const http = started.http;
  if (http) {
    await step('closing the HTTP server', async () => {
      const closed = new Promise<void>((resolve) => http.server.close(() => resolve()));
      http.server.closeIdleConnections();
      const cut = setTimeout(() => http.server.closeAllConnections(), HTTP_DRAIN_MS);
      await closed;
      clearTimeout(cut);
    });
  }
  // 2. The processor claims nothing more, finishes what runs and releases what it holds.
  started.processor.abort();
  if (started.current) await step('stopping the processor', async () => started.current);
  if (started.summarizer) await step('stopping the summarize threads', () => started.summarizer!.close());
  // 3. The pool, then the server it talks to.
  if (started.pool) await step('closing the database pool', closePool);
  if (started.embedded) await step('stopping the embedded PostgreSQL server', () => started.embedded!.stop());
  started.releaseLocalDir?.();
}

const lifecycle = installLifecycle({
  stop: stopInOrder,
  forceStop: () => started.embedded?.stopNow(),
  sinks: () => started.sinks,
  expected: (err) => err instanceof ConfigError || err instanceof EmbeddedPostgresError || err instanceof LocalDirInUseError,
});
lifecycle.starting(main());
