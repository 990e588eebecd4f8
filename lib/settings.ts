import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { Node } from 'constructs';
import type { SummaryJobsStackProps } from './summary-jobs-stack';

/**
 * Per-environment settings from CDK context (`-c key=value` or cdk.json), checked
 * once so a typo fails the synth with the key's name instead of deploying a
 * default. Anything not given keeps the stack's production default.
 */

export class SettingsError extends Error {
  override name = 'SettingsError';
}

export interface Settings {
  /** Names the stack (`SummaryJobs-<stage>`) and the API stage. */
  readonly stage: string;
  readonly stackProps: SummaryJobsStackProps;
}

/** Every context key this app reads. */
export const CONTEXT_KEYS = [
  'stage',
  'alarmEmail',
  'deletionProtection',
  'finalSnapshot',
  'multiAz',
  'databaseInstanceType',
  'databaseStorageGiB',
  'backupRetentionDays',
  'postgresVersion',
  'scheduleMinutes',
  'processorConcurrency',
  'processorMemoryMiB',
  'summarizer',
  'bedrockModelId',
] as const;

type Get = (key: (typeof CONTEXT_KEYS)[number]) => string | undefined;

function bool(get: Get, key: Parameters<Get>[0]): boolean | undefined {
  const raw = get(key);
  if (raw === undefined) return undefined;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw new SettingsError(`context ${key} must be true or false, got "${raw}"`);
}

function int(get: Get, key: Parameters<Get>[0], min: number, max: number): number | undefined {
  const raw = get(key);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new SettingsError(`context ${key} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

export function settingsFromContext(node: Node): Settings {
  // CDK's own keys carry a prefix (`@aws-cdk/...`, `aws:cdk:...`); a plain word that is not ours is a typo.
  const unknown = Object.keys(node.getAllContext() as object).filter(
    (key) => /^[A-Za-z][A-Za-z0-9]*$/.test(key) && !(CONTEXT_KEYS as readonly string[]).includes(key),
  );
  if (unknown.length > 0) {
    throw new SettingsError(`unknown context ${unknown.join(', ')}; this app reads ${CONTEXT_KEYS.join(', ')}`);
  }

  // Context from the command line arrives as strings, from cdk.json as JSON values.
  const get: Get = (key) => {
    const value: unknown = node.tryGetContext(key);
    return value === undefined || value === null || value === '' ? undefined : String(value);
  };

  const stage = get('stage') ?? 'prod';
  // One name serves the stack (letters, digits, dashes) and the API stage (letters, digits, underscores).
  if (!/^[A-Za-z][A-Za-z0-9]{0,19}$/.test(stage)) {
    throw new SettingsError(`context stage must be 1-20 letters and digits, starting with a letter, got "${stage}"`);
  }

  const alarmEmail = get('alarmEmail');
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alarmEmail)) {
    throw new SettingsError(`context alarmEmail must be an e-mail address, got "${alarmEmail}"`);
  }

  const summarizer = get('summarizer');
  if (summarizer !== undefined && summarizer !== 'extractive' && summarizer !== 'bedrock') {
    throw new SettingsError(`context summarizer must be extractive or bedrock, got "${summarizer}"`);
  }
  const bedrockModelId = get('bedrockModelId');
  if (bedrockModelId !== undefined && summarizer !== 'bedrock') {
    throw new SettingsError('context bedrockModelId is only used with -c summarizer=bedrock');
  }

  const instanceType = get('databaseInstanceType');
  if (instanceType !== undefined && !/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(instanceType)) {
    throw new SettingsError(`context databaseInstanceType must look like t4g.small (no "db." prefix), got "${instanceType}"`);
  }

  const postgresVersion = get('postgresVersion');
  if (postgresVersion !== undefined && !/^16\.\d+$/.test(postgresVersion)) {
    throw new SettingsError(`context postgresVersion must be a PostgreSQL 16 minor version such as 16.13, got "${postgresVersion}"`);
  }

  const backupRetentionDays = int(get, 'backupRetentionDays', 7, 35);
  return {
    stage,
    stackProps: {
      stageName: stage,
      alarmEmail,
      deletionProtection: bool(get, 'deletionProtection'),
      keepFinalSnapshot: bool(get, 'finalSnapshot'),
      multiAz: bool(get, 'multiAz'),
      databaseInstanceType: instanceType === undefined ? undefined : new ec2.InstanceType(instanceType),
      databaseStorageGiB: int(get, 'databaseStorageGiB', 20, 1000),
      backupRetention: backupRetentionDays === undefined ? undefined : Duration.days(backupRetentionDays),
      postgresVersion,
      scheduleMinutes: int(get, 'scheduleMinutes', 1, 60),
      processorConcurrency: int(get, 'processorConcurrency', 1, 100),
      processorMemoryMiB: int(get, 'processorMemoryMiB', 512, 10240),
      summarizer,
      bedrockModelId,
    },
  };
}
