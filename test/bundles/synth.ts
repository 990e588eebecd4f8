import { App } from 'aws-cdk-lib';
import { chmodSync, cpSync, lstatSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SummaryJobsStack } from '../../lib/summary-jobs-stack';

/** One deployed function as the template describes it: where its code is, its handler and environment. */
export interface FunctionAsset {
  logicalId: string;
  /** The asset folder CDK wrote (the zip's content). */
  assetDir: string;
  handler: string;
  runtime: string;
  memoryMiB: number;
  timeoutSeconds: number;
  /** Template values: strings, or CloudFormation references to resolve. */
  environment: Record<string, unknown>;
}

export interface SynthesizedStack {
  stackName: string;
  /** The cloud assembly folder (remove it when done). */
  outdir: string;
  resources: Record<string, { Type: string; Properties?: Record<string, any>; Metadata?: Record<string, any> }>;
  functions: FunctionAsset[];
  synthMs: number;
}

/**
 * Synthesizes the stack as `cdk synth` does: bundling on (local esbuild and
 * the command hooks), assets written to a fresh output folder.
 */
export function synthesizeWithBundling(stackName: string): SynthesizedStack {
  const outdir = mkdtempSync(join(tmpdir(), 'sj-synth-'));
  const started = Date.now();
  const app = new App({ outdir, context: { 'aws:cdk:enable-asset-metadata': true } });
  new SummaryJobsStack(app, stackName, {});
  const assembly = app.synth();
  const synthMs = Date.now() - started;
  const template = assembly.getStackByName(stackName).template as { Resources: SynthesizedStack['resources'] };
  const functions: FunctionAsset[] = Object.entries(template.Resources)
    .filter(([, r]) => r.Type === 'AWS::Lambda::Function' && r.Metadata?.['aws:asset:path'] && r.Properties?.Environment?.Variables?.DB_SECRET_ARN)
    .map(([logicalId, r]) => ({
      logicalId,
      assetDir: join(outdir, r.Metadata!['aws:asset:path'] as string),
      handler: r.Properties!.Handler as string,
      runtime: r.Properties!.Runtime as string,
      memoryMiB: r.Properties!.MemorySize as number,
      timeoutSeconds: r.Properties!.Timeout as number,
      environment: r.Properties!.Environment.Variables as Record<string, unknown>,
    }));
  return { stackName, outdir, resources: template.Resources, functions, synthMs };
}

/** Every file under `dir`, with its size, relative to `dir`. */
export function filesOf(dir: string): Array<{ path: string; bytes: number }> {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((p) => statSync(join(dir, p)).isFile())
    .map((p) => ({ path: p, bytes: statSync(join(dir, p)).size }))
    .sort((a, b) => b.bytes - a.bytes);
}

/** A read-only copy of an asset folder, as Lambda mounts the task root (readable by everyone, writable by no one). */
export function readOnlyCopy(assetDir: string, into: string): string {
  const copy = mkdtempSync(join(into, 'task-'));
  cpSync(assetDir, copy, { recursive: true });
  const lockDown = (path: string) => {
    if (lstatSync(path).isDirectory()) {
      for (const entry of readdirSync(path)) lockDown(join(path, entry));
      chmodSync(path, 0o555);
    } else {
      chmodSync(path, 0o444);
    }
  };
  lockDown(copy);
  return copy;
}

/** Removes a folder holding read-only copies (a user that is not root cannot delete inside a read-only folder). */
export function removeTree(dir: string): void {
  const unlock = (path: string) => {
    if (!lstatSync(path).isDirectory()) return;
    chmodSync(path, 0o755);
    for (const entry of readdirSync(path)) unlock(join(path, entry));
  };
  try {
    unlock(dir);
  } catch {
    // already gone, or parts not ours: rmSync says what is left
  }
  rmSync(dir, { recursive: true, force: true });
}
