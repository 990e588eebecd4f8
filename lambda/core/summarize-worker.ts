import { parentPort, workerData } from 'node:worker_threads';
import { JobError, type JobErrorKind } from './errors';
import { extractiveSummarizer } from './summarize/extractive-summarizer';
import type { Summarizer, SummaryResult } from './summarize/types';

/*
 * A summarize worker thread: the entry point `summarize-pool.ts` starts, one
 * document at a time. In a Lambda bundle it is its own file,
 * `summarize-worker.js` beside the processor's `index.js`.
 *
 * No signal reaches the summarizer here: a job that must stop is stopped by
 * terminating the whole thread, which also stops work that never yields.
 */

/** One document to summarize; `content` arrives as bytes, its buffer transferred when the sender could. */
export interface SummarizeTask {
  id: number;
  content: Uint8Array;
  contentType: string;
  filename: string | null;
  maxSentences: number;
}

export type SummarizeReply =
  | { id: number; result: SummaryResult }
  /** `kind` is null for an error that is not a JobError (the processor retries those). */
  | { id: number; error: { message: string; kind: JobErrorKind | null; snoozeSeconds: number } };

/** What the pool passes as `workerData`. */
export interface SummarizeWorkerData {
  /**
   * A module whose `summarizer` export replaces the extractive summarizer
   * (tests only: work that never yields, a thread that crashes).
   */
  workModule?: string;
}

const port = parentPort;
if (!port) throw new Error('summarize-worker.js runs in a worker thread started by summarize-pool');

const data = (workerData ?? {}) as SummarizeWorkerData;
const summarizer: Summarizer = data.workModule ? (require(data.workModule) as { summarizer: Summarizer }).summarizer : extractiveSummarizer();

port.on('message', (task: SummarizeTask) => {
  const content = Buffer.from(task.content.buffer, task.content.byteOffset, task.content.byteLength);
  summarizer
    .summarize({ content, contentType: task.contentType, filename: task.filename }, { maxSentences: task.maxSentences })
    .then(
      (result): SummarizeReply => ({ id: task.id, result }),
      (err: unknown): SummarizeReply => ({
        id: task.id,
        error: {
          message: err instanceof Error ? err.message || err.name : String(err),
          kind: err instanceof JobError ? err.kind : null,
          snoozeSeconds: err instanceof JobError ? err.snoozeSeconds : 0,
        },
      }),
    )
    .then((reply) => port.postMessage(reply));
});
