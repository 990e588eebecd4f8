import { Worker } from 'node:worker_threads';
import { permanent } from '../errors';

/*
 * pdf-parse (pdf.js) runs in a worker thread:
 * - pdf.js loads its own worker code with a dynamic `import()`, which works in
 *   a plain Node thread but not inside jest's module sandbox;
 * - parsing is CPU work that would otherwise stall the lease heartbeats;
 * - a hostile PDF can be stopped (terminate on abort) and its memory capped
 *   without taking the processor down with it.
 * pdf-parse must therefore be deployed as a node_module, not inlined into a
 * bundle: the worker requires it by path and pdf.js imports the
 * `pdf.worker.mjs` file next to it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { PDFParse } = require(workerData.modulePath);
(async () => {
  const parser = new PDFParse({ data: workerData.data, verbosity: 0 });
  try {
    const result = await parser.getText({ pageJoiner: '' });
    parentPort.postMessage({ ok: true, text: result.text, pages: result.total });
  } catch (err) {
    parentPort.postMessage({ ok: false, name: (err && err.name) || 'Error', message: String((err && err.message) || err) });
  } finally {
    await parser.destroy().catch(() => undefined);
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

type WorkerReply = { ok: true; text: string; pages: number } | { ok: false; name: string; message: string };

/** The text layer of a PDF, pages separated by blank lines. */
export async function pdfToText(bytes: Buffer, signal?: AbortSignal): Promise<string> {
  signal?.throwIfAborted();
  if (!bytes.subarray(0, 1024).includes('%PDF-')) throw permanent('could not read PDF: the file has no PDF header');
  const reply = await withWorkerSlot(() => runWorker(bytes, signal), signal);
  if (!reply.ok) throw permanent(`could not read PDF: ${describe(reply)}`);
  if (reply.text.trim() === '') {
    throw permanent(`the PDF has no text layer (${reply.pages} page${reply.pages === 1 ? '' : 's'} of images or vector shapes only; OCR it first)`);
  }
  // Undo end-of-line hyphenation: "summar-\nization".
  return reply.text.replace(/(\p{L})-\n(\p{Ll})/gu, '$1$2');
}

function describe(reply: { name: string; message: string }): string {
  if (reply.name === 'PasswordException') return 'it is password-protected';
  if (reply.name === 'InvalidPDFException') return `it is corrupt (${reply.message})`;
  return `${reply.name}: ${reply.message}`;
}

function runWorker(bytes: Buffer, signal?: AbortSignal): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { modulePath: require.resolve('pdf-parse'), data: new Uint8Array(bytes) },
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
