import type { Job } from '../core/queue';

/** A job as the API shows it. The lease token and idempotency fingerprint stay inside. */
export function presentJob(job: Job): Record<string, unknown> {
  const payload = job.payload as { filename?: string | null; contentType?: string; maxSentences?: number };
  const waitingForRetry = job.status === 'queued' && job.attempts > 0;
  return {
    id: job.id,
    status: job.status,
    jobType: job.jobType,
    priority: job.priority,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    runAt: job.runAt.toISOString(),
    ...(waitingForRetry ? { nextAttemptAt: job.runAt.toISOString() } : {}),
    ...(job.status === 'queued' && job.pendingDependencies > 0 ? { waitingForDependencies: job.pendingDependencies } : {}),
    uploadId: job.uploadId,
    filename: payload.filename ?? null,
    contentType: payload.contentType ?? null,
    progress: job.progressPercent === null ? null : { percent: job.progressPercent, message: job.progressMessage },
    result: job.status === 'completed' ? job.result : null,
    error: job.status === 'completed' ? null : job.lastError,
    // Every failed attempt, oldest first: why attempts 1..n-1 failed, not only the last.
    attemptErrors: (job.attemptErrors ?? []).map((a) => ({ ...a, clientCaused: a.clientCaused ?? false })),
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    links: { self: `/jobs/${job.id}` },
  };
}
