import { snooze, systemFailure } from '../lambda/core/errors';
import { extractiveSummarizer } from '../lambda/core/summarize/extractive-summarizer';
import type { Summarizer } from '../lambda/core/summarize/types';

/**
 * What the summarize threads run in tests (the pool's `workModule`): the
 * extractive summarizer, except for two content types that stand for the
 * failures the pool must contain.
 */
export const SPIN = 'application/x-test-spin';
export const CRASH = 'application/x-test-crash';
export const SYSTEM_FAULT = 'application/x-test-system-fault';
export const THROTTLED = 'application/x-test-throttled';

const extractive = extractiveSummarizer();

export const summarizer: Summarizer = {
  name: 'extractive',
  async summarize(doc, opts) {
    // CPU work that never yields: no checkpoint, no await, no signal could stop it on its own thread.
    if (doc.contentType === SPIN) for (;;);
    if (doc.contentType === SYSTEM_FAULT) throw systemFailure('a fault of ours, not of the document');
    if (doc.contentType === THROTTLED) throw snooze('the model is throttling', 42);
    if (doc.contentType === CRASH) {
      setImmediate(() => {
        throw new Error('the test document crashed its thread');
      });
      return new Promise(() => undefined);
    }
    return extractive.summarize(doc, opts);
  },
};
