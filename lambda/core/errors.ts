/**
 * The one error type clients see: an RFC 9457 problem. Anything else thrown
 * inside a request is a server fault and is answered with a generic 500 that
 * reveals nothing (the details go to the log).
 */
export class ProblemError extends Error {
  override name = 'ProblemError';
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    /** A short slug; the problem's type URI is built from it. */
    readonly type: string = slug(title),
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail);
  }
}

function slug(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

export const PROBLEM_BASE = 'https://summary-jobs.dev/problems/';

export function problemBody(err: ProblemError, instance?: string): Record<string, unknown> {
  return {
    type: `${PROBLEM_BASE}${err.type}`,
    title: err.title,
    status: err.status,
    detail: err.detail,
    ...(instance ? { instance } : {}),
    ...err.extensions,
  };
}

/**
 * Thrown by job work (summarizing) to say whether another attempt could help.
 * A corrupt or empty document fails for good at once; a throttled model call
 * is retried with backoff.
 */
export class JobError extends Error {
  override name = 'JobError';
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export const permanent = (message: string) => new JobError(message, false);
export const retryable = (message: string) => new JobError(message, true);
