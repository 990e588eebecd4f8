import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';

/** One function "container": the bundle loaded by the runtime stand-in in a process of its own. */
export interface LambdaProcess {
  name: string;
  /** Init phase: how long loading the handler module took. */
  initMs: number;
  invoke: <T = unknown>(event: unknown, timeoutMs?: number) => Promise<T>;
  /** Everything the function wrote to stdout and stderr so far (its CloudWatch log). */
  logs: () => string;
  stop: () => Promise<void>;
}

export class FunctionError extends Error {
  constructor(
    readonly errorType: string,
    message: string,
  ) {
    super(`${errorType}: ${message}`);
  }
}

export interface LambdaProcessOptions {
  name: string;
  taskRoot: string;
  handler: string;
  environment: Record<string, string>;
  timeoutSeconds: number;
  /** Run as this user (the runtime is not root, and the task root is read-only for it). */
  user?: { uid: number; gid: number };
}

const RUNTIME = join(__dirname, 'lambda-runtime.js');

/**
 * `user` when it can read everything a function needs from outside its task
 * root (the runtime stand-in, the SDK the runtime provides); otherwise
 * undefined, and the functions run as the test's own user (the checkout then
 * sits where other users cannot read it, as under a private home folder).
 */
export function runtimeUserFor(user: { uid: number; gid: number } | undefined, sdkDir: string): { uid: number; gid: number } | undefined {
  if (!user) return undefined;
  const readable = (path: string) => spawnSync('test', ['-r', path], { uid: user.uid, gid: user.gid }).status === 0;
  return readable(RUNTIME) && readable(join(sdkDir, 'client-lambda', 'package.json')) ? user : undefined;
}

export async function startLambdaProcess(options: LambdaProcessOptions): Promise<LambdaProcess> {
  let output = '';
  const child: ChildProcess = fork(RUNTIME, [], {
    cwd: options.taskRoot,
    // Only what Lambda gives a function: no jest, swc or tsx loaders, no inherited variables.
    env: { ...options.environment, LAMBDA_TASK_ROOT: options.taskRoot, _HANDLER: options.handler },
    execArgv: [],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    ...(options.user ?? {}),
  });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));

  const pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  const initMs = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${options.name} exited with code ${code} during init:\n${output}`)));
    child.once('message', (message: { type: string; initMs?: number; errorType?: string; errorMessage?: string }) => {
      if (message.type === 'ready') resolve(message.initMs!);
      else reject(new FunctionError(message.errorType!, `${message.errorMessage} (init of ${options.name})\n${output}`));
    });
  });
  child.removeAllListeners('exit');
  child.on('exit', (code) => {
    for (const { reject } of pending.values()) reject(new Error(`${options.name} exited with code ${code}:\n${output}`));
    pending.clear();
  });
  child.on('message', (message: { type: string; id: string; result?: unknown; errorType?: string; errorMessage?: string }) => {
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.type === 'result') waiter.resolve(message.result);
    else waiter.reject(new FunctionError(message.errorType!, message.errorMessage!));
  });

  return {
    name: options.name,
    initMs,
    invoke: <T>(event: unknown, timeoutMs = options.timeoutSeconds * 1000) =>
      new Promise<T>((resolve, reject) => {
        const id = randomUUID();
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ type: 'invoke', id, requestId: randomUUID(), event, timeoutMs });
      }),
    logs: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
