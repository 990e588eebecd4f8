import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { permanent } from '../errors';

/*
 * unpdf's serverless build of pdf.js (pure JavaScript: no canvas, no native
 * binary, its own worker inlined) runs in a worker thread:
 * - it is an ES module loaded with `import()`, which works in a plain Node
 *   thread but not inside jest's module sandbox;
 * - parsing is CPU work that would otherwise stall the lease heartbeats;
 * - a hostile PDF can be stopped (terminate on abort) and its memory capped
 *   without taking the processor down with it.
 * The reader is two files, unpdf's `index.mjs` and `pdfjs.mjs`: in a Lambda
 * bundle the stack copies them into `unpdf/` beside the bundle (they are not
 * inlined, so the main bundle stays small and the worker loads them by path);
 * elsewhere they come from node_modules.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { pathToFileURL } = require('node:url');
const { join } = require('node:path');
(async () => {
  let reader;
  try {
    reader = await import(pathToFileURL(join(workerData.readerDir, 'index.mjs')).href);
    await reader.definePDFJSModule(() => import(pathToFileURL(join(workerData.readerDir, 'pdfjs.mjs')).href));
  } catch (err) {
    parentPort.postMessage({ ok: false, name: 'ReaderUnavailable', message: String((err && err.message) || err) });
    return;
  }
  try {
    const pdf = await reader.getDocumentProxy(workerData.data, { verbosity: 0 });
    try {
      const { totalPages, text } = await reader.extractText(pdf, { mergePages: false });
      parentPort.postMessage({ ok: true, pages: text, total: totalPages });
    } finally {
      await pdf.destroy().catch(() => undefined);
    }
  } catch (err) {
    parentPort.postMessage({ ok: false, name: (err && err.name) || 'Error', message: String((err && err.message) || err) });
  }
})();
`;

/** Old-generation heap for one PDF; a document needing more is refused rather than risking the process. */
const PDF_HEAP_MB = 512;
/**
 * PDFs parsed at once per process. The processor runs several jobs
 * concurrently; a batch of large PDFs must not multiply the heap above.
 */
const PDF_WORKERS = 2;

/** Where unpdf's two ES module files are: beside the bundle in Lambda, in node_modules elsewhere. */
export function pdfReaderDir(): string {
  const bundled = join(__dirname, 'unpdf');
  if (existsSync(join(bundled, 'pdfjs.mjs'))) return bundled;
  try {
    return dirname(require.resolve('unpdf'));
  } catch {
    // Reported per document by the worker as a missing reader, never retried.
    return bundled;
  }
}

let defaultReaderDir: string | undefined;

let running = 0;
const waiting: Array<() => void> = [];

/** Runs `task` once fewer than PDF_WORKERS others run; a finishing task hands its slot straight to the next in line. */
async function withWorkerSlot<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  if (running < PDF_WORKERS) running++;
  else await slotHandedOver(signal);
  try {
    return await task();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function slotHandedOver(signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const take = () => {
      signal?.removeEventListener('abort', giveUp);
      resolve();
    };
    const giveUp = () => {
      waiting.splice(waiting.indexOf(take), 1);
      reject(signal!.reason);
    };
    waiting.push(take);
    signal?.addEventListener('abort', giveUp, { once: true });
  });
}

type WorkerReply = { ok: true; pages: string[]; total: number } | { ok: false; name: string; message: string };

/** The text layer of a PDF, pages separated by blank lines. */
export function pdfToText(bytes: Buffer, signal?: AbortSignal): Promise<string> {
  defaultReaderDir ??= pdfReaderDir();
  return pdfToTextWith(defaultReaderDir, bytes, signal);
}

/** pdfToText with the reader taken from `readerDir` (unpdf's `index.mjs` and `pdfjs.mjs`). */
export async function pdfToTextWith(readerDir: string, bytes: Buffer, signal?: AbortSignal): Promise<string> {
  signal?.throwIfAborted();
  if (!bytes.subarray(0, 1024).includes('%PDF-')) throw permanent('could not read PDF: the file has no PDF header');
  const reply = await withWorkerSlot(() => runWorker(readerDir, bytes, signal), signal);
  if (!reply.ok) throw permanent(`could not read PDF: ${describe(reply, readerDir)}`);
  const text = reply.pages
    .map((page) => page.replace(/[^\S\n]+\n/g, '\n').trim())
    .filter((page) => page !== '')
    .join('\n\n');
  if (text === '') {
    throw permanent(`the PDF has no text layer (${reply.total} page${reply.total === 1 ? '' : 's'} of images or vector shapes only; OCR it first)`);
  }
  // Undo end-of-line hyphenation: "summar-\nization".
  return text.replace(/(\p{L})-\n(\p{Ll})/gu, '$1$2');
}

function describe(reply: { name: string; message: string }, readerDir: string): string {
  if (reply.name === 'PasswordException') return 'it is password-protected';
  if (reply.name === 'InvalidPDFException') return `it is corrupt (${reply.message})`;
  // A deployment fault, the same for every PDF: retrying cannot help, and the message says what to fix.
  if (reply.name === 'ReaderUnavailable') return `the PDF reader (unpdf) could not be loaded from ${readerDir}: ${reply.message}`;
  return `${reply.name}: ${reply.message}`;
}

function runWorker(readerDir: string, bytes: Buffer, signal?: AbortSignal): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { readerDir, data: new Uint8Array(bytes) },
      resourceLimits: { maxOldGenerationSizeMb: PDF_HEAP_MB },
    });
    const finish = (settle: () => void) => {
      signal?.removeEventListener('abort', onAbort);
      worker.removeAllListeners();
      worker.on('error', () => undefined);
      void worker.terminate();
      settle();
    };
    const onAbort = () => finish(() => reject(signal!.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (reply: WorkerReply) => finish(() => resolve(reply)));
    worker.once('error', (err: Error & { code?: string }) =>
      finish(() =>
        reject(
          err.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? permanent(`could not read PDF: parsing it needs more than ${PDF_HEAP_MB} MB of memory`)
            : err,
        ),
      ),
    );
    worker.once('exit', (code) => finish(() => reject(new Error(`the PDF worker exited with code ${code} before answering`))));
  });
}
