import type { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ProcessorConfig } from './config';
import { JobError } from './errors';
import { createSummarizer, type DocumentInput, type Summarizer, type SummaryOptions, type SummaryResult } from './summarize';
import type { SummarizeReply, SummarizeTask, SummarizeWorkerData } from './summarize-worker';

/*
 * Summarizing off the event loop. The extractive summarizer is CPU work: on
 * the processor's one thread it serialized every job of a container on one
 * core, stalled the API in local mode while a large document was read, and
 * could not be stopped at JOB_TIMEOUT_MS between two checkpoints. Here each
 * document runs in a worker thread, one at a time per thread, and a job whose
 * signal aborts (timeout, lost lease) has its thread terminated and replaced:
 * work that never yields stops too, and the other threads are not touched.
 *
 * Hand-written on node:worker_threads rather than piscina: piscina starts its
 * own wrapper (`worker.js`, requiring four sibling modules) by a path relative
 * to its own file, which is not there once the processor is bundled into one
 * `index.js`; the pool needed here (fixed size, one task per thread, terminate
 * on abort) is small.
 */

/** Heap of one summarize thread: a 2 MB document needs well under 200 MB. */
const THREAD_HEAP_MB = 512;

/** The error a thread reported, as the processor classifies it: kind and snooze carried across the thread boundary. */
function rebuildError(error: SummarizeReply extends infer R ? (R extends { error: infer E } ? E : never) : never): Error {
  if (error.kind === null) return new Error(error.message);
  return new JobError(error.message, error.kind === 'retryable' || error.kind === 'snooze', error.kind, error.snoozeSeconds);
}

export interface ThreadedSummarizer extends Summarizer {
  /** Worker threads at most (0: the summarizer runs on the calling thread). */
  readonly threads: number;
  /** Terminates the threads; summaries in progress or waiting are rejected. */
  close(): Promise<void>;
}

export interface ThreadedSummarizerDeps {
  /** Replaces the Bedrock client (tests). */
  bedrock?: BedrockRuntimeClient;
  /** Path of a module whose `summarizer` export the threads run instead of the extractive one (tests only). */
  workModule?: string;
}

/**
 * The summarizer the configuration names: the extractive one in a pool of
 * `summarizeThreads` worker threads, or, with 0 threads or for Bedrock (a
 * network call, no CPU to spread), the one `createSummarizer` gives.
 *
 * A pooled summarize takes over `doc.content` when the Buffer owns all of its
 * memory: its bytes are moved to the thread, not copied, and the Buffer is
 * left empty. Buffers that share memory (Node's small-Buffer pool) are copied.
 */
export function createThreadedSummarizer(
  config: Pick<ProcessorConfig, 'summarizer' | 'bedrockModelId' | 'summarizeThreads'>,
  deps: ThreadedSummarizerDeps = {},
): ThreadedSummarizer {
  if (config.summarizer === 'bedrock' || config.summarizeThreads === 0) {
    const inline = createSummarizer(config, deps);
    return { name: inline.name, threads: 0, summarize: (doc, opts) => inline.summarize(doc, opts), close: async () => undefined };
  }
  return new SummarizePool(config.summarizeThreads, { workModule: deps.workModule });
}

/** The worker entry: the bundled or built JavaScript beside this file, else the TypeScript source through tsx. */
function workerEntry(): string {
  const built = join(__dirname, 'summarize-worker.js');
  return existsSync(built) ? built : join(__dirname, 'summarize-worker-dev.js');
}

interface Task {
  message: SummarizeTask;
  transfer: ArrayBuffer[];
  resolve: (result: SummaryResult) => void;
  reject: (reason: unknown) => void;
  /** Detaches the abort listener. */
  release: () => void;
}

interface Thread {
  worker: Worker;
  task: Task | null;
}

class SummarizePool implements ThreadedSummarizer {
  readonly name = 'extractive' as const;
  private readonly entry = workerEntry();
  private readonly threadsRunning = new Set<Thread>();
  private readonly waiting: Task[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    readonly threads: number,
    private readonly workerData: SummarizeWorkerData,
  ) {}

  summarize(doc: DocumentInput, { maxSentences, signal }: SummaryOptions): Promise<SummaryResult> {
    if (this.closed) return Promise.reject(new Error('the summarizer pool is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const content = ownedBytes(doc.content);
    return new Promise<SummaryResult>((resolve, reject) => {
      const task: Task = {
        message: { id: this.nextId++, content, contentType: doc.contentType, filename: doc.filename ?? null, maxSentences },
        transfer: [content.buffer as ArrayBuffer],
        resolve,
        reject,
        release: () => signal?.removeEventListener('abort', onAbort),
      };
      const onAbort = () => this.cancel(task, signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(task);
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.waiting.splice(0)) settle(task, () => task.reject(new Error('the summarizer pool is closed')));
    const stopping = [...this.threadsRunning].map((thread) => {
      if (thread.task) {
        const task = thread.task;
        settle(task, () => task.reject(new Error('the summarizer pool is closed')));
      }
      return this.retire(thread);
    });
    await Promise.all(stopping);
  }

  /** Hands waiting documents to idle threads, starting threads up to the pool's size. */
  private dispatch(): void {
    while (this.waiting.length > 0 && !this.closed) {
      let thread = [...this.threadsRunning].find((t) => t.task === null);
      if (!thread) {
        if (this.threadsRunning.size >= this.threads) return;
        thread = this.start();
      }
      const task = this.waiting.shift()!;
      thread.task = task;
      // A busy thread keeps the process alive like any pending I/O would; an idle one does not.
      thread.worker.ref();
      thread.worker.postMessage(task.message, task.transfer);
    }
  }

  private start(): Thread {
    // A hostile document exhausts its own thread's heap (the thread dies, the job fails and is retried), not the process.
    const worker = new Worker(this.entry, { workerData: this.workerData, resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MB } });
    const thread: Thread = { worker, task: null };
    worker.unref();
    worker.on('message', (reply: SummarizeReply) => {
      const task = thread.task;
      if (!task || task.message.id !== reply.id) return;
      thread.task = null;
      worker.unref();
      if ('result' in reply) settle(task, () => task.resolve(reply.result));
      else settle(task, () => task.reject(rebuildError(reply.error)));
      this.dispatch();
    });
    // An uncaught error or an exit in the thread: its document fails (retryable), the thread is replaced.
    const lost = (why: string) => {
      if (!this.threadsRunning.delete(thread)) return;
      const task = thread.task;
      thread.task = null;
      if (task) settle(task, () => task.reject(new Error(`the summarize worker thread ${why}`)));
      this.dispatch();
    };
    worker.on('error', (err) => lost(`crashed: ${err.message}`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    this.threadsRunning.add(thread);
    return thread;
  }

  /** An aborted document: dropped if it waits; its thread terminated and replaced if it runs. */
  private cancel(task: Task, reason: unknown): void {
    const at = this.waiting.indexOf(task);
    if (at >= 0) this.waiting.splice(at, 1);
    const thread = [...this.threadsRunning].find((t) => t.task === task);
    settle(task, () => task.reject(reason));
    if (thread) {
      void this.retire(thread);
      this.dispatch();
    }
  }

  private retire(thread: Thread): Promise<unknown> {
    this.threadsRunning.delete(thread);
    thread.task = null;
    thread.worker.removeAllListeners();
    thread.worker.on('error', () => undefined);
    return thread.worker.terminate().catch(() => undefined);
  }
}

function settle(task: Task, outcome: () => void): void {
  task.release();
  outcome();
}

/**
 * The document's bytes in memory that can be transferred: the Buffer's own
 * ArrayBuffer when the Buffer spans all of it, else a copy (a Buffer cut from
 * Node's shared pool must not detach the pool).
 */
function ownedBytes(content: Buffer): Uint8Array {
  const whole = content.byteOffset === 0 && content.byteLength === content.buffer.byteLength && content.buffer instanceof ArrayBuffer;
  return whole ? new Uint8Array(content.buffer, 0, content.byteLength) : new Uint8Array(content);
}
