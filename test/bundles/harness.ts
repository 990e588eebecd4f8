import type { APIGatewayProxyResult } from 'aws-lambda';
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAwsStandIn, type AwsStandIn } from './aws-stand-in';
import { apiGatewayEvent, type ApiRequest } from './events';
import { runtimeUserFor, startLambdaProcess, type LambdaProcess } from './lambda-process';
import { readOnlyCopy, removeTree, synthesizeWithBundling, type FunctionAsset, type SynthesizedStack } from './synth';
import { startTlsPostgres, unprivilegedUser, type TlsPostgres } from './tls-postgres';

/**
 * The deployed system, locally: the synthesized bundles of the migrate, API
 * and processor functions, each in its own runtime process, against a
 * TLS-only PostgreSQL and a Secrets Manager / Lambda stand-in. An async invoke
 * of the processor (the upload nudge) runs the processor bundle, as Lambda
 * would.
 */
export interface Bundles {
  stack: SynthesizedStack;
  db: TlsPostgres;
  aws: AwsStandIn;
  lambdas: Record<'api' | 'processor' | 'migrate', LambdaProcess>;
  adminKey: string;
  assetOf: (prefix: string) => FunctionAsset;
  /** The name the processor has in the environment of the API. */
  functionName: (logicalId: string) => string;
  /** Processor runs started by async invokes, and what each returned. */
  asyncRuns: Array<Promise<unknown>>;
  processorResults: Array<Record<string, unknown>>;
  /** One API Gateway request through the API bundle. */
  call: (request: ApiRequest) => Promise<APIGatewayProxyResult>;
  stop: () => Promise<void>;
}

export const REGION = 'us-east-1';
const ACCESS_KEY_ID = 'ASIABUNDLESTEST00001';
const REPO_NODE_MODULES = join(__dirname, '..', '..', 'node_modules');

const secretArn = (logicalId: string) => `arn:aws:secretsmanager:${REGION}:123456789012:secret:${logicalId}-AbCdEf`;

/** The template's environment with every reference replaced by its local stand-in; a reference without one fails loudly. */
function resolveEnvironment(stack: SynthesizedStack, fn: FunctionAsset, taskRoot: string, db: TlsPostgres, functionName: (id: string) => string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(fn.environment)) {
    if (typeof value === 'string') {
      out[name] = value.replace(/^\/var\/task(?=\/|$)/, taskRoot);
      continue;
    }
    const ref = (value as { Ref?: string }).Ref;
    const getAtt = (value as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
    const target = stack.resources[ref ?? getAtt?.[0] ?? ''];
    if (ref && target && /^AWS::SecretsManager::(Secret|SecretTargetAttachment)$/.test(target.Type)) out[name] = secretArn(ref);
    else if (ref && target?.Type === 'AWS::Lambda::Function') out[name] = functionName(ref);
    else if (getAtt && target?.Type === 'AWS::RDS::DBProxy' && getAtt[1] === 'Endpoint') out[name] = db.host;
    else throw new Error(`no local stand-in for ${name} = ${JSON.stringify(value)}: add one`);
  }
  return out;
}

export async function startBundles(stackName: string): Promise<Bundles> {
  const stack = synthesizeWithBundling(stackName);
  const functionName = (logicalId: string) => `${stackName}-${logicalId}`;
  const assetOf = (prefix: string) => {
    const found = stack.functions.filter((f) => f.logicalId.startsWith(prefix));
    if (found.length !== 1) throw new Error(`expected one function ${prefix}*, found ${found.length}`);
    return found[0]!;
  };
  const root = mkdtempSync(join(tmpdir(), 'sj-bundles-'));
  chmodSync(root, 0o755);
  const stops: Array<() => Promise<void> | void> = [() => removeTree(stack.outdir), () => removeTree(root)];
  const stop = async () => {
    for (const step of stops.reverse()) await step();
  };
  try {
    const db = await startTlsPostgres(root);
    stops.push(() => db.destroy());

    const adminKey = `sj_admin_bundles_${Math.random().toString(36).slice(2)}`;
    const lambdas = {} as Bundles['lambdas'];
    const asyncRuns: Array<Promise<unknown>> = [];
    const processorResults: Array<Record<string, unknown>> = [];
    const dbSecret = Object.keys(stack.resources).find((id) => stack.resources[id]!.Type === 'AWS::SecretsManager::SecretTargetAttachment')!;
    const adminSecret = Object.keys(stack.resources).find((id) => id.includes('AdminApiKey') && stack.resources[id]!.Type === 'AWS::SecretsManager::Secret')!;
    const processorName = functionName(assetOf('Processor').logicalId);
    const aws = await startAwsStandIn({
      region: REGION,
      accessKeyId: ACCESS_KEY_ID,
      secrets: {
        // The shape RDS's generated secret has (through its attachment to the instance).
        [secretArn(dbSecret)]: JSON.stringify({ engine: 'postgres', host: 'instance.example.internal', port: 5432, dbname: db.database, username: db.user, password: db.password }),
        [secretArn(adminSecret)]: adminKey,
      },
      onAsyncInvoke: (name, payload) => {
        if (name !== processorName) return;
        // Lambda runs a queued async event on a container of its own; here, in the one processor process.
        asyncRuns.push(lambdas.processor.invoke<Record<string, unknown>>(payload).then((r) => processorResults.push(r)));
      },
    });
    stops.push(() => aws.close());

    // The runtime provides the AWS SDK v3 (the bundles leave @aws-sdk/* out) and nothing else.
    const runtimeModules = join(root, 'runtime-node-modules');
    mkdirSync(runtimeModules, { mode: 0o755 });
    symlinkSync(join(REPO_NODE_MODULES, '@aws-sdk'), join(runtimeModules, '@aws-sdk'));
    const user = runtimeUserFor(unprivilegedUser(), join(REPO_NODE_MODULES, '@aws-sdk'));
    if (process.getuid?.() === 0 && !user) console.warn('bundles: the checkout is not readable by an unprivileged user; the functions run as root');
    stops.push(async () => {
      await Promise.allSettled(asyncRuns);
      await Promise.all(Object.values(lambdas).map((l) => l.stop()));
    });
    const start = async (key: keyof Bundles['lambdas'], prefix: string) => {
      const fn = assetOf(prefix);
      const taskRoot = readOnlyCopy(fn.assetDir, root);
      lambdas[key] = await startLambdaProcess({
        name: key,
        taskRoot,
        handler: fn.handler,
        timeoutSeconds: fn.timeoutSeconds,
        user,
        environment: {
          ...resolveEnvironment(stack, fn, taskRoot, db, functionName),
          // The one addition: the proxy listens on 5432 in AWS, this cluster on a free port.
          DB_PORT: String(db.port),
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          NODE_PATH: runtimeModules,
          NODE_EXTRA_CA_CERTS: db.caFile,
          TZ: ':UTC',
          LANG: 'en_US.UTF-8',
          AWS_REGION: REGION,
          AWS_DEFAULT_REGION: REGION,
          AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
          AWS_SECRET_ACCESS_KEY: 'bundles-test-secret-access-key',
          AWS_SESSION_TOKEN: 'bundles-test-session-token',
          AWS_ENDPOINT_URL_SECRETS_MANAGER: aws.endpoint,
          AWS_ENDPOINT_URL_LAMBDA: aws.endpoint,
          AWS_LAMBDA_FUNCTION_NAME: functionName(fn.logicalId),
          AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMiB),
          AWS_LAMBDA_LOG_FORMAT: 'JSON',
          AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
        },
      });
    };
    await Promise.all([start('migrate', 'Migrations'), start('api', 'Api'), start('processor', 'Processor')]);
    return {
      stack,
      db,
      aws,
      lambdas,
      adminKey,
      assetOf,
      functionName,
      asyncRuns,
      processorResults,
      call: (request) => lambdas.api.invoke<APIGatewayProxyResult>(apiGatewayEvent(request)),
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
