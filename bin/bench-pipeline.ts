/**
 * `npm run bench -- --only=pipeline [options]`, or `npx tsx bin/bench-pipeline.ts [options]`:
 * the whole system end to end, as `npm start` runs it. Local mode (bin/local.ts of the
 * checkout under test) runs in a child process against a fresh database; this process is the
 * load generator on the same machine.
 *
 *   load    N HTTP uploads (POST /uploads, text/plain) of 1-3 KB pieces of real prose (the
 *           licence texts under /usr/share/common-licenses), K in flight: uploads/s; end-to-end
 *           jobs/s (first created_at to last finished_at); pickup (started_at - created_at)
 *           and end-to-end (finished_at - created_at) latency p50/p99 from the database's own
 *           timestamps; CPU per job of the Node process (all threads, and its main thread
 *           alone, from /proc) and of the Postgres backends serving the bench database
 *   idle    single uploads one at a time, each waited for: pickup and end-to-end p50
 *   health  GET /health latency p50/p99/max at rest, and while a 2 MB document is summarized
 *
 * Options:
 *   --repo=PATH     a checkout to run (repeatable; default this one). With several, and
 *                   --rounds=R, the runs interleave (A B A B) and the table shows each figure as
 *                   a ratio to the first repo's mean: compare checkouts only within one run
 *   --rounds=R      runs per repo (default 1)
 *   --uploads=N     default 3000 (--quick: 600)      --in-flight=K   default 32
 *   --idle=S        idle pickup samples (default 20)  --big-mb=M      the large document (default 2)
 *   --threads=T     SUMMARIZE_THREADS for the child (default: the child's own default)
 *   --env=KEY=VAL   more environment for the child (repeatable), e.g. --env=DB_POOL_MAX=10
 *   --cpu-prof      profile the child (--cpu-prof) and print where its CPU went during the load
 *   --summarize-only  no local mode, no database: this checkout's threaded summarizer alone, the
 *                   same pieces of text with 8 in flight, at 0 (the calling thread), 1 .. cores threads
 *                   (interleaved, --rounds times): documents/s and CPU per document, what the
 *                   summarizing part can reach when nothing else wants the cores
 *   --json          results as JSON on stdout
 *
 * The database server: DATABASE_URL's, else 127.0.0.1:5432, else an embedded one. Each run gets a
 * database of its own (bench_pipeline_<random>), dropped afterwards. Progress goes to stderr.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { freePort } from '../lambda/local/embedded-postgres';
import { findServer, withDatabaseName, type Server } from './bench-server';

const LICENCES = '/usr/share/common-licenses';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

export interface PipelineOptions {
  repos: string[];
  rounds: number;
  uploads: number;
  inFlight: number;
  idleSamples: number;
  bigBytes: number;
  threads?: number;
  env: Record<string, string>;
  cpuProf: boolean;
  summarizeOnly: boolean;
  json: boolean;
}

export interface PipelineResult {
  repo: string;
  commit: string;
  round: number;
  uploads: number;
  failedJobs: number;
  uploadsPerSecond: number;
  uploadP50Ms: number;
  uploadP99Ms: number;
  jobsPerSecond: number;
  pickupP50Ms: number;
  pickupP99Ms: number;
  endToEndP50Ms: number;
  endToEndP99Ms: number;
  /** The Node process, every thread, during the load (uploads until the last job finished). */
  nodeCpuMsPerJob: number;
  /** Its main thread alone: the API, the processor and, without worker threads, the summarizing. */
  nodeMainThreadCpuMsPerJob: number;
  /** Time the main thread was ready to run but waited for a core (the machine was busy). */
  nodeMainThreadWaitMsPerJob: number;
  /** Busy share of all cores during the load, and the CPU of everything else on the machine per job. */
  machineBusyPercent: number;
  otherCpuMsPerJob: number;
  postgresCpuMsPerJob: number | null;
  loadGeneratorCpuMsPerJob: number;
  idlePickupP50Ms: number;
  idleEndToEndP50Ms: number;
  healthAtRestP50Ms: number;
  healthAtRestP99Ms: number;
  healthDuringBigP50Ms: number;
  healthDuringBigP99Ms: number;
  healthDuringBigMaxMs: number;
  healthDuringBigSamples: number;
  bigDocumentMs: number;
  peakRssMb: number;
  profile?: ProfileSummary;
}

// ---------------------------------------------------------------------------
// Documents

/** Paragraphs of the licence texts, packed into pieces of 1-3 KB that end at a paragraph or sentence. */
export function licencePieces(): string[] {
  const files = readdirSync(LICENCES)
    .map((f) => join(LICENCES, f))
    .filter((f) => statSync(f).isFile())
    .sort();
  // Symlinks (GPL -> GPL-3) resolve to the same file: each text once.
  const texts = [...new Set(files.map((f) => readFileSync(f, 'utf8')))];
  const pieces: string[] = [];
  for (const text of texts) {
    let piece = '';
    for (const paragraph of text.split(/\n\s*\n/).flatMap(splitLong)) {
      if (piece.length + paragraph.length > 3000 && piece.length >= 1000) {
        pieces.push(piece);
        piece = '';
      }
      piece += (piece ? '\n\n' : '') + paragraph;
      if (piece.length >= 1000 && /[.!?]\s*$/.test(piece)) {
        pieces.push(piece);
        piece = '';
      }
    }
    if (piece.length >= 1000) pieces.push(piece);
  }
  return pieces.filter((p) => p.length >= 1000 && p.length <= 3000);
}

function splitLong(paragraph: string): string[] {
  if (paragraph.length <= 3000) return [paragraph.trim()];
  const out: string[] = [];
  let part = '';
  for (const sentence of paragraph.split(/(?<=[.!?])\s+/)) {
    if (part && part.length + sentence.length > 2500) {
      out.push(part);
      part = '';
    }
    part += (part ? ' ' : '') + sentence;
  }
  if (part) out.push(part);
  return out;
}

/** About `bytes` of licence text, within the summarizer's 2,000,000-character limit. */
function bigDocument(bytes: number): Buffer {
  const all = licencePieces().join('\n\n');
  let text = '';
  while (text.length < bytes) text += `${all}\n\n`;
  return Buffer.from(text.slice(0, Math.min(bytes, 1_990_000)));
}

// ---------------------------------------------------------------------------
// Measuring

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN);
const sortNum = (xs: number[]) => [...xs].sort((a, b) => a - b);
const roundTo = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/** utime + stime in ms from a /proc stat line (the command may contain spaces, so fields are counted after its ')'). */
function statCpuMs(path: string): number | null {
  try {
    const line = readFileSync(path, 'utf8');
    const fields = line.slice(line.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

/** The Node process's CPU (all threads), its main thread's, and the time the main thread waited for a core. */
function nodeCpu(pid: number): { total: number; main: number; mainWaited: number } {
  const waitedNs = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]);
  return { total: statCpuMs(`/proc/${pid}/stat`) ?? NaN, main: statCpuMs(`/proc/${pid}/task/${pid}/stat`) ?? NaN, mainWaited: waitedNs / 1e6 };
}

/** The whole machine's busy and total CPU time in ms, summed over cores: whatever else runs on a shared machine shows here. */
function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields as [number, number, number, number, number, number, number, number];
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: (busy * 1000) / CLK_TCK, total: ((busy + idle + iowait) * 1000) / CLK_TCK };
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

/**
 * CPU of the Postgres backends connected to one database, sampled from /proc: a backend
 * seen for the first time after the start counts from zero. Null when the server's
 * processes are not visible (another host, another container).
 */
class PostgresCpu {
  private readonly start = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private visible = true;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly admin: Client,
    private readonly database: string,
  ) {}

  async begin(): Promise<void> {
    for (const [pid, ms] of await this.sample()) this.start.set(pid, ms);
    this.timer = setInterval(() => void this.sample().catch(() => undefined), 500);
  }

  async end(): Promise<number | null> {
    if (this.timer) clearInterval(this.timer);
    await this.sample();
    if (!this.visible) return null;
    let total = 0;
    for (const [pid, ms] of this.last) total += ms - (this.start.get(pid) ?? 0);
    return total;
  }

  private async sample(): Promise<Map<number, number>> {
    const { rows } = await this.admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [this.database]);
    const now = new Map<number, number>();
    for (const { pid } of rows) {
      const ms = statCpuMs(`/proc/${pid}/stat`);
      if (ms === null) this.visible = false;
      else now.set(pid, ms);
    }
    for (const [pid, ms] of now) this.last.set(pid, ms);
    return now;
  }
}

// ---------------------------------------------------------------------------
// HTTP

interface Reply {
  status: number;
  body: string;
  ms: number;
}

function send(agent: Agent, port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Reply> {
  const t0 = performance.now();
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers: body ? { ...headers, 'content-length': String(body.length) } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------
// Local mode in a child process

interface LocalMode {
  child: ChildProcess;
  pid: number;
  port: number;
  apiKey: string;
  logFile: string;
  profileDir: string | null;
  stop: () => Promise<void>;
}

async function startLocalMode(repo: string, databaseUrl: string, opts: PipelineOptions, workDir: string): Promise<LocalMode> {
  const port = await freePort();
  const apiKey = `sj_bench_${randomBytes(18).toString('base64url')}`;
  const logFile = join(workDir, 'local.log');
  const out = openSync(logFile, 'a');
  const profileDir = opts.cpuProf ? join(workDir, 'profiles') : null;
  // `node --import tsx`, not `npm start`: npm and the tsx CLI would each put a process between
  // this one and local mode, and /proc/<pid> must be local mode's own.
  const args = [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), '--import', 'tsx', 'bin/local.ts'];
  const child = spawn(process.execPath, args, {
    cwd: repo,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOCAL_DIR: join(workDir, 'local'),
      DEV_API_KEY: apiKey,
      ...(opts.threads !== undefined ? { SUMMARIZE_THREADS: String(opts.threads) } : {}),
      ...opts.env,
    },
  });
  live.children.add(child);
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      live.children.delete(child);
      r(code);
    }),
  );
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(30_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      child.kill('SIGKILL');
      await exited;
    }
  };
  const agent = new Agent({ keepAlive: false });
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`local mode exited with code ${child.exitCode} while starting; its output is in ${logFile}`);
    const health = await send(agent, port, 'GET', '/health', {}).catch(() => null);
    if (health?.status === 200) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`local mode did not answer GET /health within 120 s; its output is in ${logFile}`);
    }
    await sleep(100);
  }
  return { child, pid: child.pid!, port, apiKey, logFile, profileDir, stop };
}

// ---------------------------------------------------------------------------
// One run


function log(message: string): void {
  process.stderr.write(`[bench pipeline] ${message}\n`);
}

function commitOf(repo: string): string {
  try {
    const sha = execFileSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', repo, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha}+changes` : sha;
  } catch {
    return 'unknown';
  }
}

// What exists right now, so an interrupted run leaves no database or child behind.
const live = { databases: new Set<string>(), children: new Set<ChildProcess>() };

async function runOnce(server: Server, repo: string, round: number, opts: PipelineOptions, pieces: string[], big: Buffer): Promise<PipelineResult> {
  const database = `bench_pipeline_${randomBytes(5).toString('hex')}`;
  const workDir = mkdtempSync(join(tmpdir(), 'summary-jobs-bench-pipeline-'));
  const admin = new Client({ connectionString: server.adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  live.databases.add(database);
  const db = new Client({ connectionString: withDatabaseName(server.adminUrl, database) });
  // Dropping the database on an interrupt ends this connection: that is expected, not a crash.
  db.on('error', () => undefined);
  let local: LocalMode | null = null;
  try {
    log(`${repo} (${commitOf(repo)}), round ${round}: starting local mode on database ${database}`);
    local = await startLocalMode(repo, withDatabaseName(server.adminUrl, database), opts, workDir);
    await db.connect();
    const { port, apiKey, pid } = local;
    const agent = new Agent({ keepAlive: true, maxSockets: opts.inFlight });
    const headers = { 'x-api-key': apiKey, 'content-type': 'text/plain; charset=utf-8' };
    const upload = async (body: Buffer): Promise<{ id: string; ms: number }> => {
      const reply = await send(agent, port, 'POST', '/uploads', headers, body);
      if (reply.status !== 202) throw new Error(`POST /uploads answered ${reply.status}: ${reply.body.slice(0, 300)}`);
      return { id: (JSON.parse(reply.body) as { id: string }).id, ms: reply.ms };
    };
    const finished = async (ids: string[]) => {
      const { rows } = await db.query<{ done: number; failed: number }>(
        `SELECT count(*) FILTER (WHERE finished_at IS NOT NULL)::int AS done, count(*) FILTER (WHERE status = 'failed')::int AS failed
         FROM summary_jobs WHERE id = ANY($1::uuid[])`,
        [ids],
      );
      return rows[0]!;
    };
    const waitFor = async (ids: string[], pollMs: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const state = await finished(ids);
        if (state.done === ids.length) return state;
        if (Date.now() > deadline) throw new Error(`${ids.length - state.done} of ${ids.length} jobs unfinished after ${timeoutMs / 1000} s; local mode's output is in ${local!.logFile}`);
        await sleep(pollMs);
      }
    };
    const latencies = async (ids: string[]) => {
      const { rows } = await db.query<{ span_ms: number; pickup_p50: number; pickup_p99: number; e2e_p50: number; e2e_p99: number }>(
        `SELECT extract(epoch FROM max(finished_at) - min(created_at)) * 1000 AS span_ms,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)) * 1000 AS pickup_p50,
           percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)) * 1000 AS pickup_p99,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)) * 1000 AS e2e_p50,
           percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)) * 1000 AS e2e_p99
         FROM summary_jobs WHERE id = ANY($1::uuid[])`,
        [ids],
      );
      const r = rows[0]!;
      return { spanMs: Number(r.span_ms), pickupP50: Number(r.pickup_p50), pickupP99: Number(r.pickup_p99), e2eP50: Number(r.e2e_p50), e2eP99: Number(r.e2e_p99) };
    };
    // Local mode is warm (its code loaded, a summarize thread started) before anything is timed.
    await waitFor([(await upload(Buffer.from(pieces[0]!))).id], 20, 60_000);

    // 1. The load.
    log(`load: ${opts.uploads} uploads, ${opts.inFlight} in flight`);
    const pgCpu = new PostgresCpu(admin, database);
    await pgCpu.begin();
    const node0 = nodeCpu(pid);
    const machine0 = machineCpu();
    const gen0 = process.cpuUsage();
    const window0 = process.hrtime.bigint();
    const t0 = performance.now();
    const ids: string[] = new Array(opts.uploads);
    const uploadMs: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: opts.inFlight }, async () => {
        for (let i = next++; i < opts.uploads; i = next++) {
          const r = await upload(Buffer.from(pieces[i % pieces.length]!));
          ids[i] = r.id;
          uploadMs.push(r.ms);
        }
      }),
    );
    const uploadSeconds = (performance.now() - t0) / 1000;
    const state = await waitFor(ids, 100, 30 * 60_000);
    const window1 = process.hrtime.bigint();
    const node1 = nodeCpu(pid);
    const machine1 = machineCpu();
    const gen1 = process.cpuUsage(gen0);
    const pgMs = await pgCpu.end();
    const genMs = (gen1.user + gen1.system) / 1000;
    const machineBusyMs = machine1.busy - machine0.busy;
    const load = await latencies(ids);
    const uploadSorted = sortNum(uploadMs);

    // 2. Idle pickup: one upload at a time, each waited for.
    log(`idle: ${opts.idleSamples} single uploads`);
    await sleep(500);
    const idleIds: string[] = [];
    for (let i = 0; i < opts.idleSamples; i++) {
      const { id } = await upload(Buffer.from(pieces[(i * 7) % pieces.length]!));
      await waitFor([id], 5, 60_000);
      idleIds.push(id);
      await sleep(100);
    }
    const idle = await latencies(idleIds);

    // 3. GET /health at rest, then while the large document is summarized.
    const healthAgent = new Agent({ keepAlive: true, maxSockets: 1 });
    const healthOnce = async () => {
      const reply = await send(healthAgent, port, 'GET', '/health', {});
      if (reply.status !== 200) throw new Error(`GET /health answered ${reply.status}`);
      return reply.ms;
    };
    const atRest: number[] = [];
    for (let i = 0; i < 200; i++) atRest.push(await healthOnce());
    log(`health: while a ${(big.length / 1e6).toFixed(1)} MB document is summarized`);
    const bigId = (await upload(big)).id;
    const during: number[] = [];
    const started = async () => (await db.query<{ s: boolean }>('SELECT started_at IS NOT NULL AS s FROM summary_jobs WHERE id = $1', [bigId])).rows[0]!.s;
    while (!(await started())) await sleep(2);
    let bigDone = false;
    const watcher = waitFor([bigId], 20, 10 * 60_000).then(() => {
      bigDone = true;
    });
    while (!bigDone) during.push(await healthOnce());
    await watcher;
    const bigRow = (
      await db.query<{ ms: number; status: string }>(
        'SELECT extract(epoch FROM finished_at - started_at) * 1000 AS ms, status FROM summary_jobs WHERE id = $1',
        [bigId],
      )
    ).rows[0]!;
    if (bigRow.status !== 'completed') log(`the large document's job ended ${bigRow.status}`);
    const rest = sortNum(atRest);
    const busy = sortNum(during);
    const rssMb = peakRssMb(pid);
    agent.destroy();
    healthAgent.destroy();

    await local.stop();
    const profile = local.profileDir ? summarizeProfiles(local.profileDir, repo, window0, window1, opts.uploads) : undefined;
    const jobs = opts.uploads;
    return {
      repo,
      commit: commitOf(repo),
      round,
      uploads: jobs,
      failedJobs: state.failed,
      uploadsPerSecond: roundTo(jobs / uploadSeconds, 0),
      uploadP50Ms: roundTo(percentile(uploadSorted, 0.5), 1),
      uploadP99Ms: roundTo(percentile(uploadSorted, 0.99), 1),
      jobsPerSecond: roundTo(jobs / (load.spanMs / 1000), 1),
      pickupP50Ms: roundTo(load.pickupP50, 1),
      pickupP99Ms: roundTo(load.pickupP99, 1),
      endToEndP50Ms: roundTo(load.e2eP50, 1),
      endToEndP99Ms: roundTo(load.e2eP99, 1),
      nodeCpuMsPerJob: roundTo((node1.total - node0.total) / jobs),
      nodeMainThreadCpuMsPerJob: roundTo((node1.main - node0.main) / jobs),
      postgresCpuMsPerJob: pgMs === null ? null : roundTo(pgMs / jobs),
      nodeMainThreadWaitMsPerJob: roundTo((node1.mainWaited - node0.mainWaited) / jobs),
      machineBusyPercent: roundTo((100 * machineBusyMs) / (machine1.total - machine0.total), 0),
      otherCpuMsPerJob: roundTo((machineBusyMs - (node1.total - node0.total) - (pgMs ?? 0) - genMs) / jobs),
      loadGeneratorCpuMsPerJob: roundTo(genMs / jobs),
      idlePickupP50Ms: roundTo(idle.pickupP50, 1),
      idleEndToEndP50Ms: roundTo(idle.e2eP50, 1),
      healthAtRestP50Ms: roundTo(percentile(rest, 0.5)),
      healthAtRestP99Ms: roundTo(percentile(rest, 0.99)),
      healthDuringBigP50Ms: roundTo(percentile(busy, 0.5)),
      healthDuringBigP99Ms: roundTo(percentile(busy, 0.99)),
      healthDuringBigMaxMs: roundTo(busy[busy.length - 1] ?? NaN),
      healthDuringBigSamples: busy.length,
      bigDocumentMs: roundTo(Number(bigRow.ms), 0),
      peakRssMb: rssMb,
      ...(profile ? { profile } : {}),
    };
  } finally {
    await local?.stop().catch(() => undefined);
    await db.end().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
    live.databases.delete(database);
    await admin.end();
    if (!opts.cpuProf) rmSync(workDir, { recursive: true, force: true });
    else log(`profiles and local mode's output kept in ${workDir}`);
  }
}

// ---------------------------------------------------------------------------
// CPU profiles

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}
interface ProfileSummary {
  /** Per thread: busy ms per job during the load, the top functions and areas by self time. */
  threads: Array<{ file: string; busyMsPerJob: number; topFunctions: Array<[string, number]>; topAreas: Array<[string, number]> }>;
}

/** Where a frame's code lives: a package, a file of the checkout, a Node module, or a V8 pseudo-frame. */
function areaOf(url: string, functionName: string, repo: string): string {
  if (!url) return `(${functionName || 'native'})`.replace(/^\(\((.*)\)\)$/, '($1)');
  if (url.startsWith('node:')) return url;
  const path = url.replace(/^file:\/\//, '');
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (inModules) return inModules[1]!;
  return path.startsWith(repo) ? relative(repo, path) : path;
}

/**
 * Self time by function and by area, counted only for samples inside the load's window.
 * V8's profile clock and process.hrtime are both CLOCK_MONOTONIC in microseconds on Linux,
 * so the window measured here applies to the child's samples.
 */
function summarizeProfiles(dir: string, repo: string, from: bigint, to: bigint, jobs: number): ProfileSummary {
  const fromUs = Number(from / 1000n);
  const toUs = Number(to / 1000n);
  const threads: ProfileSummary['threads'] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const selfUs = new Map<number, number>();
    let t = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      t += profile.timeDeltas[i]!;
      if (t < fromUs || t > toUs) continue;
      // A sample's time is the gap to the next sample.
      const dt = profile.timeDeltas[i + 1] ?? 0;
      selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + dt);
    }
    const byFunction = new Map<string, number>();
    const byArea = new Map<string, number>();
    let busyUs = 0;
    for (const [id, us] of selfUs) {
      const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
      if (functionName === '(idle)') continue;
      busyUs += us;
      const area = areaOf(url, functionName, repo);
      const fn = `${functionName || '(anonymous)'} ${url ? `${area}:${lineNumber + 1}` : ''}`.trim();
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
      byArea.set(area, (byArea.get(area) ?? 0) + us);
    }
    if (busyUs === 0) continue;
    const top = (m: Map<string, number>, n: number) =>
      [...m.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([k, us]) => [k, roundTo(us / 1000 / jobs, 3)] as [string, number]);
    threads.push({ file, busyMsPerJob: roundTo(busyUs / 1000 / jobs, 3), topFunctions: top(byFunction, 25), topAreas: top(byArea, 15) });
  }
  return { threads: threads.sort((a, b) => b.busyMsPerJob - a.busyMsPerJob) };
}

// ---------------------------------------------------------------------------
// Output

const COLUMNS: Array<[keyof PipelineResult, string]> = [
  ['uploadsPerSecond', 'uploads/s'],
  ['jobsPerSecond', 'jobs/s e2e'],
  ['pickupP50Ms', 'pickup p50'],
  ['pickupP99Ms', 'pickup p99'],
  ['endToEndP50Ms', 'e2e p50'],
  ['endToEndP99Ms', 'e2e p99'],
  ['uploadP50Ms', 'POST p50'],
  ['uploadP99Ms', 'POST p99'],
  ['nodeCpuMsPerJob', 'node ms/job'],
  ['nodeMainThreadCpuMsPerJob', 'main ms/job'],
  ['nodeMainThreadWaitMsPerJob', 'main wait ms/job'],
  ['postgresCpuMsPerJob', 'pg ms/job'],
  ['loadGeneratorCpuMsPerJob', 'loadgen ms/job'],
  ['otherCpuMsPerJob', 'others ms/job'],
  ['machineBusyPercent', 'machine busy %'],
  ['idlePickupP50Ms', 'idle pickup p50'],
  ['idleEndToEndP50Ms', 'idle e2e p50'],
  ['healthAtRestP50Ms', 'health rest p50'],
  ['healthAtRestP99Ms', 'health rest p99'],
  ['healthDuringBigP50Ms', 'health 2MB p50'],
  ['healthDuringBigP99Ms', 'health 2MB p99'],
  ['healthDuringBigMaxMs', 'health 2MB max'],
  ['bigDocumentMs', '2MB job ms'],
  ['peakRssMb', 'peak RSS MB'],
];

function printResults(results: PipelineResult[], opts: PipelineOptions): void {
  const label = (r: PipelineResult) => `${basename(r.repo)}@${r.commit}#${r.round}`;
  const labels = results.map(label);
  const width = Math.max(16, ...labels.map((l) => l.length));
  const out: string[] = [];
  out.push(
    `pipeline: local mode end to end, ${opts.uploads} uploads of 1-3 KB licence text, ${opts.inFlight} in flight; ` +
      `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), SUMMARIZE_THREADS=${opts.threads ?? 'default'}` +
      `${Object.keys(opts.env).length ? `, ${Object.entries(opts.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`,
  );
  out.push(`${'figure'.padEnd(18)}${labels.map((l) => l.padStart(width + 2)).join('')}`);
  for (const [key, name] of COLUMNS) out.push(`${name.padEnd(18)}${results.map((r) => String(r[key] ?? 'n/a').padStart(width + 2)).join('')}`);
  const failed = results.filter((r) => r.failedJobs > 0);
  for (const r of failed) out.push(`! ${label(r)}: ${r.failedJobs} jobs failed`);

  // Ratios of each repo's mean to the first repo's mean, when there are several.
  const repos = [...new Set(results.map((r) => r.repo))];
  if (repos.length > 1) {
    const mean = (repo: string, key: keyof PipelineResult) => {
      const xs = results.filter((r) => r.repo === repo).map((r) => Number(r[key]));
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    out.push('', `ratio of means to ${repos[0]} (${results.filter((r) => r.repo === repos[0]).length} runs each, interleaved)`);
    out.push(`${'figure'.padEnd(18)}${repos.map((r) => basename(r).padStart(width + 2)).join('')}`);
    for (const [key, name] of COLUMNS) {
      out.push(`${name.padEnd(18)}${repos.map((repo) => `${roundTo(mean(repo, key) / mean(repos[0]!, key), 2)}x`.padStart(width + 2)).join('')}`);
    }
  }
  for (const r of results) {
    if (!r.profile) continue;
    out.push('', `CPU profile of ${label(r)} during the load (self time, ms per job):`);
    for (const thread of r.profile.threads) {
      out.push(`  ${thread.file}: ${thread.busyMsPerJob} ms/job busy`);
      out.push('    by area:');
      for (const [k, ms] of thread.topAreas) out.push(`      ${String(ms).padStart(8)}  ${k}`);
      out.push('    by function:');
      for (const [k, ms] of thread.topFunctions) out.push(`      ${String(ms).padStart(8)}  ${k}`);
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------

class UsageError extends Error {
  override name = 'UsageError';
}

export function parsePipelineOptions(args: string[]): PipelineOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        repo: { type: 'string', multiple: true },
        rounds: { type: 'string', default: '1' },
        uploads: { type: 'string' },
        'in-flight': { type: 'string', default: '32' },
        idle: { type: 'string', default: '20' },
        'big-mb': { type: 'string', default: '2' },
        threads: { type: 'string' },
        env: { type: 'string', multiple: true },
        'cpu-prof': { type: 'boolean', default: false },
        'summarize-only': { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const count = (name: string, raw: string | undefined, fallback: number, min: number, max: number) => {
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not "${raw}"`);
    return n;
  };
  const repos = (values.repo ?? [resolve(__dirname, '..')]).map((r) => resolve(r));
  for (const repo of repos) {
    if (!existsSync(join(repo, 'bin', 'local.ts'))) throw new UsageError(`--repo=${repo}: no bin/local.ts there`);
    if (!existsSync(join(repo, 'node_modules', 'tsx'))) throw new UsageError(`--repo=${repo}: no node_modules there (npm ci, or a symlink to another checkout's)`);
  }
  const env: Record<string, string> = {};
  for (const pair of values.env ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--env takes KEY=VALUE, not "${pair}"`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return {
    repos,
    rounds: count('rounds', values.rounds, 1, 1, 20),
    uploads: count('uploads', values.uploads, values.quick ? 600 : 3000, 1, 1_000_000),
    inFlight: count('in-flight', values['in-flight'], 32, 1, 1024),
    idleSamples: count('idle', values.idle, 20, 1, 1000),
    bigBytes: count('big-mb', values['big-mb'], 2, 1, 2) * 1_000_000,
    threads: values.threads === undefined ? undefined : count('threads', values.threads, 0, 0, 64),
    env,
    cpuProf: Boolean(values['cpu-prof']),
    summarizeOnly: Boolean(values['summarize-only']),
    json: Boolean(values.json),
  };
}

export interface SummarizeResult {
  threads: number;
  round: number;
  documentsPerSecond: number;
  /** This process, every thread. */
  cpuMsPerDocument: number;
}

/** The threaded summarizer alone, in this process: no HTTP, no database. */
async function benchSummarizeOnly(opts: PipelineOptions, pieces: string[]): Promise<SummarizeResult[]> {
  const { createThreadedSummarizer } = await import('../lambda/core/summarize-pool');
  const results: SummarizeResult[] = [];
  const documents = opts.uploads;
  for (let round = 1; round <= opts.rounds; round++) {
    for (let threads = 0; threads <= availableParallelism(); threads++) {
      const summarizer = createThreadedSummarizer({ summarizer: 'extractive', bedrockModelId: 'unused', summarizeThreads: threads });
      const run = async (n: number) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            for (let i = next++; i < n; i = next++) {
              await summarizer.summarize({ content: Buffer.from(pieces[i % pieces.length]!), contentType: 'text/plain' }, { maxSentences: 3 });
            }
          }),
        );
      };
      // Threads started and compiled before the clock starts.
      await run(Math.min(500, documents));
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await run(documents);
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      await summarizer.close();
      results.push({ threads, round, documentsPerSecond: roundTo(documents / seconds, 0), cpuMsPerDocument: roundTo((cpu.user + cpu.system) / 1000 / documents) });
      log(`summarize-only: ${threads} threads, round ${round}: ${results[results.length - 1]!.documentsPerSecond} documents/s`);
    }
  }
  return results;
}

/** Runs the pipeline benchmark with command-line style arguments and prints its results. */
export async function benchPipeline(args: string[]): Promise<PipelineResult[] | SummarizeResult[]> {
  const opts = parsePipelineOptions(args);
  const pieces = licencePieces();
  if (pieces.length < 20) throw new Error(`too little text under ${LICENCES} (${pieces.length} pieces of 1-3 KB)`);
  if (opts.summarizeOnly) {
    const results = await benchSummarizeOnly(opts, pieces);
    if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    else {
      const lines = [`summarize only: ${opts.uploads} documents of 1-3 KB, 8 in flight, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}); threads 0 = the calling thread`];
      lines.push(`${'threads'.padEnd(8)}${'round'.padStart(6)}${'docs/s'.padStart(10)}${'CPU ms/doc'.padStart(12)}`);
      for (const r of results) lines.push(`${String(r.threads).padEnd(8)}${String(r.round).padStart(6)}${String(r.documentsPerSecond).padStart(10)}${String(r.cpuMsPerDocument).padStart(12)}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return results;
  }
  const big = bigDocument(opts.bigBytes);
  const server = await findServer(log);
  const interrupted = async () => {
    log('interrupted: stopping local mode and dropping the benchmark databases');
    for (const child of live.children) child.kill('SIGKILL');
    for (const name of live.databases) {
      const admin = new Client({ connectionString: server.adminUrl });
      await admin.connect().then(() => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => undefined);
      await admin.end().catch(() => undefined);
    }
    await server.stop().catch(() => undefined);
    process.exit(130);
  };
  process.once('SIGINT', () => void interrupted());
  process.once('SIGTERM', () => void interrupted());
  log(`database server: ${server.source}; ${pieces.length} distinct pieces of text; ${availableParallelism()} cores`);
  const results: PipelineResult[] = [];
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      for (const repo of opts.repos) results.push(await runOnce(server, repo, round, opts, pieces, big));
    }
  } finally {
    await server.stop();
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else printResults(results, opts);
  return results;
}

if (require.main === module) {
  benchPipeline(process.argv.slice(2)).catch((err) => {
    if (err instanceof UsageError) console.error(`${err.message}\nusage: npx tsx bin/bench-pipeline.ts [--repo=PATH ...] [--rounds=R] [--uploads=N] [--in-flight=K] [--threads=T] [--env=KEY=VALUE ...] [--cpu-prof] [--quick] [--json]`);
    else console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
  });
}
