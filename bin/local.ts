/**
 * `npm start`: the whole system on one machine. The same handlers and core code
 * as in AWS; only the edges are local stand-ins:
 *   API Gateway  -> an HTTP server on PORT that builds proxy events
 *   EventBridge  -> a timer invoking the processor, plus the nudge after an upload
 *   RDS          -> DATABASE_URL, or an embedded PostgreSQL under .local/pgdata
 *   Secrets Mgr  -> files under .local/secrets
 *   CloudWatch + SNS -> the stack's alarm rules evaluated here, paging the console,
 *                    ALERTS_FILE and ALERT_WEBHOOK_URL
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { dashboardRoutes } from '../lambda/api/dashboard';
import { createApiHandler } from '../lambda/api/routes';
import { PROCESSOR_SCHEDULE_MINUTES } from '../lambda/core/alarm-rules';
import { createClient, findClientByName, hashApiKey } from '../lambda/core/clients';
import { apiConfig, processorConfig } from '../lambda/core/config';
import { closePool, getPool } from '../lambda/core/db';
import { logger } from '../lambda/core/logger';
import { RecordingMetrics } from '../lambda/core/metrics';
import { migrate } from '../lambda/core/migrate';
import { runProcessor } from '../lambda/core/processor';
import { getSecretString, localSecretFile } from '../lambda/core/secrets';
import { createSummarizer } from '../lambda/core/summarize';
import { jobWork } from '../lambda/core/work';
import { AlarmEvaluator, consoleSink, fileSink, webhookSink, type AlertSink } from '../lambda/local/alerts';
import { startEmbeddedPostgres, type RunningPostgres } from '../lambda/local/embedded-postgres';
import { lambdaContext, startHttpServer } from '../lambda/local/http';

const ROOT = resolve(__dirname, '..');
const LOCAL_DIR = process.env.LOCAL_DIR ?? join(ROOT, '.local');
const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST ?? '127.0.0.1';
// Local mode runs the processor more often than the stack's schedule, so a
// demo does not wait a minute; the nudge after each upload starts it at once.
const INTERVAL_MS = Number(process.env.PROCESSOR_INTERVAL_MS ?? 5000);
const PROCESSOR_TIMEOUT_MS = 5 * 60_000;
const DB_NAME = 'summary_jobs';

function localSecret(name: string, make: () => string): string {
  const dir = join(LOCAL_DIR, 'secrets');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = localSecretFile(dir, name);
  if (!existsSync(file)) writeFileSync(file, make(), { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

async function startDatabase(): Promise<RunningPostgres | null> {
  if (process.env.DATABASE_URL) return null;
  const server = await startEmbeddedPostgres({ dataDir: join(LOCAL_DIR, 'pgdata'), persistent: true, port: Number(process.env.LOCAL_PG_PORT ?? 0) || undefined });
  const admin = new Client({ connectionString: server.url('postgres') });
  await admin.connect();
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DB_NAME}`);
  await admin.end();
  process.env.DATABASE_URL = server.url(DB_NAME);
  return server;
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

async function main() {
  const embedded = await startDatabase();
  process.env.LOCAL_SECRETS_DIR = join(LOCAL_DIR, 'secrets');
  const pool = await getPool();
  const applied = await migrate(pool);
  if (applied.length) logger.info('migrations applied', { applied });

  const api = apiConfig();
  const adminKey = localSecret(api.adminSecretId, () => `sj_admin_${randomBytes(24).toString('base64url')}`);
  const devKey = await ensureDevClient();

  // Alerts: the stack's alarm rules, evaluated locally.
  const sinks: AlertSink[] = [consoleSink()];
  if (process.env.ALERTS_FILE) sinks.push(fileSink(process.env.ALERTS_FILE));
  if (process.env.ALERT_WEBHOOK_URL) sinks.push(webhookSink(process.env.ALERT_WEBHOOK_URL));
  const alarms = new AlarmEvaluator(sinks);
  const alarmTimer = setInterval(() => alarms.evaluate(), 10_000);

  // The processor: a timer (EventBridge) plus nudges (async invokes), one run at a time.
  const config = processorConfig();
  const work = jobWork(pool, createSummarizer(config), config);
  const shutdown = new AbortController();
  let current: Promise<unknown> | null = null;
  let again = false;
  const invokeProcessor = (): void => {
    if (shutdown.signal.aborted) return;
    if (current) {
      again = true;
      return;
    }
    const metrics = new RecordingMetrics((points) => alarms.record(points));
    current = runProcessor({ pool, config, logger, metrics, work }, lambdaContext('summary-jobs-processor', PROCESSOR_TIMEOUT_MS), shutdown.signal)
      .catch((err) => logger.error('processor invocation failed', err as Error))
      .finally(() => {
        current = null;
        if (again) {
          again = false;
          invokeProcessor();
        }
      });
  };
  const schedule = setInterval(invokeProcessor, INTERVAL_MS);

  const handler = createApiHandler({
    pool: async () => pool,
    adminKey: () => getSecretString(api.adminSecretId),
    nudge: async () => invokeProcessor(),
    logger,
    config: api,
    extraRoutes: dashboardRoutes,
  });
  const http = await startHttpServer(handler, { port: PORT, host: HOST });
  invokeProcessor();

  console.log(`
summary-jobs is running (local mode)
  dashboard  ${http.url}/dashboard (paste the admin key)
  API        ${http.url}   (processor every ${INTERVAL_MS} ms here; every ${PROCESSOR_SCHEDULE_MINUTES} min in AWS)
  database   ${embedded ? `embedded PostgreSQL, data in ${join(LOCAL_DIR, 'pgdata')}` : 'DATABASE_URL'}
  dev key    ${devKey}
  admin key  ${adminKey}
  alerts     console${process.env.ALERTS_FILE ? `, ${process.env.ALERTS_FILE}` : ''}${process.env.ALERT_WEBHOOK_URL ? ', webhook' : ''}

Try it:
  curl -s -X POST ${http.url}/uploads -H 'x-api-key: ${devKey}' -H 'content-type: text/plain' --data-binary @README.md
`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down: finishing running jobs, releasing claimed ones', { signal });
    clearInterval(schedule);
    clearInterval(alarmTimer);
    shutdown.abort();
    await http.close();
    await current;
    await closePool();
    if (embedded) await embedded.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  console.error(`local mode failed to start: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
