/**
 * Summarizing a large document is CPU work on the processor's only thread,
 * which also runs the lease heartbeats and the per-job timeout. Awaiting this
 * between phases lets those timers fire, and stops the work once the job is
 * aborted (the abort reason is what the processor expects to see thrown).
 */
export async function checkpoint(signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  await new Promise<void>((resolve) => setImmediate(resolve));
  signal?.throwIfAborted();
}
