import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../lambda/local/embedded-postgres';

const ROOT = resolve(__dirname, '..', '..');

/** `npm start` (bin/local.ts) in a child process of its own process group, for tests that treat it as a user would. */
export interface LocalProcess {
  child: ChildProcess;
  url: string;
  devKey: string;
  localDir: string;
  alertsFile: string;
  output: () => string;
  exited: Promise<number | null>;
  /** Stops the whole process group and removes the local directory. */
  kill: () => Promise<void>;
}

export async function startLocal(env: Record<string, string>): Promise<LocalProcess> {
  const localDir = mkdtempSync(join(tmpdir(), 'sj-local-'));
  const port = await freePort();
  const devKey = `sj_dev_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const alertsFile = join(localDir, 'alerts.jsonl');
  // As `npm start` runs it: node with tsx's loader, no tsx CLI between the signals and the process.
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/local.ts'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      LOCAL_DIR: localDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      DEV_API_KEY: devKey,
      ALERTS_FILE: alertsFile,
      POWERTOOLS_LOG_LEVEL: 'WARN',
      ...env,
    },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`local mode exited with ${child.exitCode}:\n${out}`);
    const ok = await fetch(`${url}/health`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`local mode did not answer /health within 30 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    child,
    url,
    devKey,
    localDir,
    alertsFile,
    output: () => out,
    exited,
    kill: async () => {
      if (child.exitCode === null) {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
        await exited;
      }
      rmSync(localDir, { recursive: true, force: true });
    },
  };
}
