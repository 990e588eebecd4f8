import { availableParallelism } from 'node:os';

/**
 * The one place environment variables are read. Each group is parsed once
 * (module scope in Lambda: at cold start) and a bad value fails loudly with
 * the variable's name, rather than surfacing later as an odd runtime error.
 */

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

export interface DatabaseConfig {
  /** Local mode and tests: a full connection string. */
  url?: string;
  /** AWS: the Secrets Manager secret with username/password, and where to connect (the RDS Proxy). */
  secretArn?: string;
  host?: string;
  port: number;
  database: string;
  ssl: boolean;
  /** Connections per container; RDS Proxy multiplexes, so Lambdas keep this small. */
  poolMax: number;
  /** A connection attempt that takes longer is an outage: fail fast (503) rather than hang. */
  connectTimeoutMs: number;
  /** Server-side cap on one statement (sent at connect, only without RDS Proxy). */
  statementTimeoutMs: number;
  /** Client-side cap on one query: ends the wait on a frozen server too. */
  queryTimeoutMs: number;
}

export function databaseConfig(env: Env = process.env): DatabaseConfig {
  const url = env.DATABASE_URL || undefined;
  const secretArn = env.DB_SECRET_ARN || undefined;
  if (!url && !secretArn) throw new ConfigError('set DATABASE_URL, or DB_SECRET_ARN with DB_HOST');
  if (secretArn && !env.DB_HOST) throw new ConfigError('DB_HOST is required with DB_SECRET_ARN');
  // Well inside API Gateway's 29 s, and far below the processor's heartbeat interval.
  const statementTimeoutMs = int(env, 'DB_STATEMENT_TIMEOUT_MS', 10_000, 100, 900_000);
  return {
    url,
    secretArn,
    host: env.DB_HOST || undefined,
    port: int(env, 'DB_PORT', 5432, 1, 65535),
    database: env.DB_NAME || 'summary_jobs',
    ssl: env.DB_SSL ? env.DB_SSL === 'true' : Boolean(secretArn),
    poolMax: int(env, 'DB_POOL_MAX', 2, 1, 100),
    connectTimeoutMs: int(env, 'DB_CONNECT_TIMEOUT_MS', 5_000, 100, 60_000),
    statementTimeoutMs,
    // A little longer than the server's own limit, so the server's clearer error wins when it can answer.
    queryTimeoutMs: int(env, 'DB_QUERY_TIMEOUT_MS', statementTimeoutMs + 2_000, 100, 900_000),
  };
}

export interface ProcessorConfig {
  batchSize: number;
  concurrency: number;
  leaseSeconds: number;
  heartbeatSeconds: number;
  jobTimeoutMs: number;
  /** Stop claiming when less than this is left of the invocation. */
  safetyMarginMs: number;
  /** Upper bound for one invocation even when Lambda would allow more. */
  maxRunMs: number;
  workerId?: string;
  summarizer: 'extractive' | 'bedrock';
  bedrockModelId: string;
  defaultMaxSentences: number;
  /** Fair claim (round-robin across clients, rate limits applied) or plain priority order. */
  claimMode: 'fair' | 'priority';
  /** Finished jobs older than this are pruned (0: keep forever). */
  retentionSeconds: number;
  retentionBatchSize: number;
  retentionMaxBatches: number;
  /** Worker threads that summarize documents off the event loop (0: summarize on the main thread). */
  summarizeThreads: number;
  /** Outcomes waiting to be recorded are sent together after at most this long (the completer's batching window). */
  flushDelayMs: number;
  /** Times a job may be snoozed (throttling, the database going away) before a snooze spends an attempt. */
  maxSnoozes: number;
}

export function processorConfig(env: Env = process.env): ProcessorConfig {
  const jobTimeoutMs = int(env, 'JOB_TIMEOUT_MS', 60_000, 100, 900_000);
  const leaseSeconds = int(env, 'LEASE_SECONDS', 120, 2, 3600);
  const heartbeatSeconds = int(env, 'HEARTBEAT_SECONDS', Math.max(1, Math.floor(leaseSeconds / 4)), 1, 3600);
  if (heartbeatSeconds * 2 > leaseSeconds) {
    throw new ConfigError(`HEARTBEAT_SECONDS (${heartbeatSeconds}) must be at most half of LEASE_SECONDS (${leaseSeconds})`);
  }
  return {
    // Jobs per claim. A processor holds at most BATCH_SIZE + CONCURRENCY jobs:
    // a larger batch means fewer calls and commits per job (processor scenario,
    // no-op jobs, fair claim: 25/50/100 ran at 0.27-0.29x/0.40x/0.50-0.53x the
    // engine's batch-100 rate), and, with slow jobs, more of a small backlog
    // waiting in one invocation while another has free slots (BENCHMARKS.md).
    batchSize: int(env, 'BATCH_SIZE', 100, 1, 1000),
    concurrency: int(env, 'CONCURRENCY', 8, 1, 256),
    leaseSeconds,
    heartbeatSeconds,
    jobTimeoutMs,
    safetyMarginMs: int(env, 'SAFETY_MARGIN_MS', jobTimeoutMs + 5_000, 0, 900_000),
    maxRunMs: int(env, 'MAX_RUN_MS', 840_000, 100, 900_000),
    workerId: env.WORKER_ID || undefined,
    summarizer: oneOf(env, 'SUMMARIZER', 'extractive', ['extractive', 'bedrock'] as const),
    bedrockModelId: env.BEDROCK_MODEL_ID || 'anthropic.claude-3-haiku-20240307-v1:0',
    defaultMaxSentences: int(env, 'SUMMARY_SENTENCES', 3, 1, 50),
    claimMode: oneOf(env, 'CLAIM_MODE', 'fair', ['fair', 'priority'] as const),
    retentionSeconds: int(env, 'RETENTION_DAYS', 30, 0, 3650) * 86_400,
    retentionBatchSize: int(env, 'RETENTION_BATCH_SIZE', 1000, 1, 50_000),
    retentionMaxBatches: int(env, 'RETENTION_MAX_BATCHES', 5, 0, 1000),
    // One per core the container has: a Lambda gets more vCPUs with more memory.
    summarizeThreads: int(env, 'SUMMARIZE_THREADS', availableParallelism(), 0, 64),
    // How long an outcome may wait for the next claim to carry it. Measured
    // (processor scenario, batch 100): 10 ms recorded the last jobs of each
    // batch alone (0.019 commits/job), 50 ms with the next claim (0.010);
    // a result shows at most this much later, small beside a summary's seconds.
    flushDelayMs: int(env, 'FLUSH_DELAY_MS', 50, 0, 1000),
    maxSnoozes: int(env, 'MAX_SNOOZES', 20, 0, 1000),
  };
}

export interface ApiConfig {
  maxUploadBytes: number;
  /** Secrets Manager id of the admin credential (AWS), or the local secret name. */
  adminSecretId: string;
  /** Name of the processor function to nudge after an upload; unset: no nudge. */
  processorFunctionName?: string;
}

export function apiConfig(env: Env = process.env): ApiConfig {
  return {
    // API Gateway base64-encodes binary bodies and a Lambda request is capped at 6 MB: 4 MiB fits.
    maxUploadBytes: int(env, 'MAX_UPLOAD_BYTES', 4 * 1024 * 1024, 1024, 6 * 1024 * 1024),
    adminSecretId: env.ADMIN_SECRET_ID || 'summary-jobs/admin-api-key',
    processorFunctionName: env.PROCESSOR_FUNCTION_NAME || undefined,
  };
}
