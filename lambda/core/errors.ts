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
 * Thrown by job work (summarizing) to say what should happen to the job:
 *   permanent  the document is the problem (unreadable, empty, binary, too
 *              large, unsupported, corrupt): fails for good at once, and is
 *              counted as a client error, not a system failure;
 *   system     a fault of ours that another attempt cannot fix (unknown job
 *              type, the upload missing): fails for good and pages;
 *   retryable  another attempt may succeed: retried with backoff;
 *   snooze     not now (the model throttles us): run again after
 *              `snoozeSeconds` without spending an attempt, a bounded number
 *              of times.
 */
export type JobErrorKind = 'permanent' | 'system' | 'retryable' | 'snooze';

export class JobError extends Error {
  override name = 'JobError';
  readonly kind: JobErrorKind;
  constructor(
    message: string,
    readonly retryable: boolean,
    kind?: JobErrorKind,
    /** For a snooze: how long to wait before the next run. */
    readonly snoozeSeconds = 0,
  ) {
    super(message);
    this.kind = kind ?? (retryable ? 'retryable' : 'permanent');
  }

  /** Whether the document (the client's input) caused the failure. */
  get clientCaused(): boolean {
    return this.kind === 'permanent';
  }
}

export const permanent = (message: string) => new JobError(message, false, 'permanent');
export const systemFailure = (message: string) => new JobError(message, false, 'system');
export const retryable = (message: string) => new JobError(message, true, 'retryable');
/** Run again after `seconds` without spending an attempt (bounded per job by the processor). */
export const snooze = (message: string, seconds: number) => new JobError(message, true, 'snooze', seconds);
