import type { Pool } from 'pg';
import type { ProcessorConfig } from './config';
import { permanent } from './errors';
import type { JobWork } from './processor';
import type { Summarizer } from './summarize';
import { loadUpload } from './uploads';

/** The work of a 'summarize' job: load its upload, summarize it, return the result to store. */
export function summarizeWork(pool: Pool, summarizer: Summarizer, config: Pick<ProcessorConfig, 'defaultMaxSentences'>): JobWork {
  return async (job, ctx) => {
    if (job.jobType !== 'summarize') throw permanent(`unknown job type "${job.jobType}"`);
    if (!job.uploadId) throw permanent('the job has no upload');
    const upload = await loadUpload(pool, job.uploadId, job.clientId);
    if (!upload) throw permanent(`upload ${job.uploadId} no longer exists`);
    await ctx.progress(10, 'document loaded');
    const maxSentences = typeof job.payload.maxSentences === 'number' ? job.payload.maxSentences : config.defaultMaxSentences;
    const summary = await summarizer.summarize(
      { content: upload.content, contentType: upload.contentType, filename: upload.filename },
      { maxSentences, signal: ctx.signal },
    );
    return { ...summary };
  };
}
