import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Secrets come from AWS Secrets Manager; local mode swaps in a folder of files
 * (LOCAL_SECRETS_DIR) behind the same function. Values are cached per container
 * for a few minutes so a rotated secret is picked up without a cold start.
 */

const TTL_MS = 5 * 60_000;
const cache = new Map<string, { value: string; expires: number }>();
let client: SecretsManagerClient | undefined;

export function secretsManagerClient(): SecretsManagerClient {
  client ??= new SecretsManagerClient({});
  return client;
}

export async function getSecretString(secretId: string, now = Date.now()): Promise<string> {
  const hit = cache.get(secretId);
  if (hit && hit.expires > now) return hit.value;
  const value = await fetchSecret(secretId);
  cache.set(secretId, { value, expires: now + TTL_MS });
  return value;
}

async function fetchSecret(secretId: string): Promise<string> {
  const localDir = process.env.LOCAL_SECRETS_DIR;
  if (localDir) {
    const file = join(localDir, secretId.replace(/[^A-Za-z0-9._-]/g, '_'));
    return (await readFile(file, 'utf8')).trim();
  }
  const out = await secretsManagerClient().send(new GetSecretValueCommand({ SecretId: secretId }));
  if (!out.SecretString) throw new Error(`secret ${secretId} has no string value`);
  return out.SecretString;
}

/** Forget cached values (tests, and after an authentication failure that may mean rotation). */
export function clearSecretCache(): void {
  cache.clear();
}

/** After a refused login: the next read of the secret (or of every secret) goes to the source. */
export function forgetSecret(secretId?: string): void {
  if (secretId === undefined) cache.clear();
  else cache.delete(secretId);
}

export function localSecretFile(dir: string, secretId: string): string {
  return join(dir, secretId.replace(/[^A-Za-z0-9._-]/g, '_'));
}
