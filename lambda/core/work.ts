import type { Pool } from 'pg';
import type { ProcessorConfig } from './config';
import { systemFailure } from './errors';
import type { JobWork } from './processor';
import type { Summarizer } from './summarize';
import { loadUpload } from './uploads';

/**
 * What each job type does. The processor calls `work(job, ctx)` and stores
 * the returned object as the job's result.
 *   summarize: the job's uploaded document, summarized.
 *   digest:    the client's summaries of the last `windowHours` (default 24),
 *              summarized together (what a recurring "daily digest" runs).
 */
export function jobWork(pool: Pool, summarizer: Summarizer, config: Pick<ProcessorConfig, 'defaultMaxSentences'>): JobWork {
  const maxSentencesOf = (payload: Record<string, unknown>) =>
    typeof payload.maxSentences === 'number' ? payload.maxSentences : config.defaultMaxSentences;

  const summarize: JobWork = async (job, ctx) => {
    if (!job.uploadId) throw systemFailure('the job has no upload');
    const upload = await loadUpload(pool, job.uploadId, job.clientId);
    if (!upload) throw systemFailure(`upload ${job.uploadId} no longer exists`);
    await ctx.progress(10, 'document loaded');
    const summary = await summarizer.summarize(
      { content: upload.content, contentType: upload.contentType, filename: upload.filename },
      { maxSentences: maxSentencesOf(job.payload), signal: ctx.signal },
    );
    return { ...summary };
  };

  const digest: JobWork = async (job, ctx) => {
    const hours = typeof job.payload.windowHours === 'number' ? job.payload.windowHours : 24;
    // Uses the finished_at index; the client filter is applied to that small range.
    const { rows } = await pool.query<{ id: string; summary: string }>(
      `SELECT id, result->>'summary' AS summary FROM summary_jobs
       WHERE finished_at > now() - $2 * interval '1 hour' AND client_id = $1 AND status = 'completed'
         AND job_type = 'summarize' AND result ? 'summary'
       ORDER BY finished_at`,
      [job.clientId, hours],
    );
    await ctx.progress(30, `${rows.length} summaries collected`);
    if (rows.length === 0) return { summary: '', documents: 0, windowHours: hours, sourceJobIds: [] };
    const text = rows.map((r) => r.summary).join('\n\n');
    const summary = await summarizer.summarize(
      { content: Buffer.from(text, 'utf8'), contentType: 'text/plain', filename: null },
      { maxSentences: maxSentencesOf(job.payload), signal: ctx.signal },
    );
    return { ...summary, documents: rows.length, windowHours: hours, sourceJobIds: rows.map((r) => r.id) };
  };

  const byType: Record<string, JobWork> = { summarize, digest };
  return async (job, ctx) => {
    const work = byType[job.jobType];
    if (!work) throw systemFailure(`unknown job type "${job.jobType}"`);
    return work(job, ctx);
  };
}
