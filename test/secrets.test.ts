import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseConfig } from '../lambda/core/config';
import { poolConfig } from '../lambda/core/db';
import { clearSecretCache, getSecretString, localSecretFile } from '../lambda/core/secrets';

const secrets = mockClient(SecretsManagerClient);

beforeEach(() => {
  secrets.reset();
  clearSecretCache();
  delete process.env.LOCAL_SECRETS_DIR;
});

describe('secrets', () => {
  it('reads a secret from Secrets Manager once and serves it from the cache until the TTL passes', async () => {
    secrets.on(GetSecretValueCommand, { SecretId: 'admin' }).resolvesOnce({ SecretString: 'first' }).resolves({ SecretString: 'rotated' });
    const t0 = 1_000_000;
    expect(await getSecretString('admin', t0)).toBe('first');
    expect(await getSecretString('admin', t0 + 60_000)).toBe('first');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(await getSecretString('admin', t0 + 6 * 60_000)).toBe('rotated');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('uses the local secrets folder instead when LOCAL_SECRETS_DIR is set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sj-secrets-'));
    writeFileSync(localSecretFile(dir, 'summary-jobs/admin-api-key'), 'local-admin\n');
    process.env.LOCAL_SECRETS_DIR = dir;
    expect(await getSecretString('summary-jobs/admin-api-key')).toBe('local-admin');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('builds the database connection from the secret and the proxy host, with TLS verified', async () => {
    secrets.on(GetSecretValueCommand, { SecretId: 'arn:db' }).resolves({ SecretString: JSON.stringify({ username: 'app', password: 'pw-from-sm', dbname: 'summary_jobs' }) });
    const env = { DB_SECRET_ARN: 'arn:db', DB_HOST: 'proxy.example.internal' };
    const config = await poolConfig(databaseConfig(env));
    expect(config).toMatchObject({ host: 'proxy.example.internal', port: 5432, user: 'app', database: 'summary_jobs', ssl: { rejectUnauthorized: true }, max: 2 });
    // The password is read per connection, from the cached secret, never stored in the config.
    expect(typeof config.password).toBe('function');
    expect(await (config.password as () => Promise<string>)()).toBe('pw-from-sm');
    expect(JSON.stringify(config)).not.toContain('pw-from-sm');
    expect(JSON.stringify(env)).not.toContain('pw-from-sm');
  });

  it('refuses a configuration with neither DATABASE_URL nor a secret', () => {
    expect(() => databaseConfig({})).toThrow(/DATABASE_URL/);
    expect(() => databaseConfig({ DB_SECRET_ARN: 'arn:x' })).toThrow(/DB_HOST/);
  });
});

describe('processor nudge', () => {
  it('invokes the processor asynchronously after an upload', async () => {
    const lambda = mockClient(LambdaClient);
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    process.env.PROCESSOR_FUNCTION_NAME = 'summary-jobs-processor';
    process.env.DB_SECRET_ARN = 'arn:db';
    process.env.DB_HOST = 'proxy';
    try {
      const { nudgeProcessor } = await import('../lambda/handlers/api');
      await nudgeProcessor();
      const calls = lambda.commandCalls(InvokeCommand);
      expect(calls).toHaveLength(1);
      expect(calls[0]!.args[0].input).toMatchObject({ FunctionName: 'summary-jobs-processor', InvocationType: 'Event' });
    } finally {
      lambda.restore();
      delete process.env.PROCESSOR_FUNCTION_NAME;
      delete process.env.DB_SECRET_ARN;
      delete process.env.DB_HOST;
    }
  });
});
