import type { Context } from 'aws-lambda';
import { processorConfig } from '../core/config';
import { getPool } from '../core/db';
import { logger } from '../core/logger';
import { PowertoolsMetrics } from '../core/metrics';
import { claimUntilOf, runProcessor } from '../core/processor';
import { createThreadedSummarizer } from '../core/summarize-pool';
import { jobWork } from '../core/work';

/**
 * Processor entry point, for the EventBridge schedule and for the upload
 * path's async nudge alike: both mean "drain the queue now". A nudge also
 * carries `claimUntil`: until then the run keeps looking for jobs, for the
 * uploads of a burst that sent no nudge of their own.
 */

const config = processorConfig();
// Summarizing runs in worker threads (SUMMARIZE_THREADS): a job past JOB_TIMEOUT_MS is cut off even when CPU-bound.
const summarizer = createThreadedSummarizer(config);
const metrics = new PowertoolsMetrics();

export const handler = async (event: unknown, context: Context) => {
  // The container may have served other invocations: none of their keys belong on this run's lines.
  logger.resetKeys();
  logger.addContext(context);
  const pool = await getPool();
  return runProcessor({ pool, config, logger, metrics, work: jobWork(pool, summarizer, config) }, context, undefined, {
    claimUntil: claimUntilOf(event),
  });
};
