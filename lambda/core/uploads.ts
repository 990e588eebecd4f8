import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { withTransaction, type Db } from './db';
import { uuidv7 } from './ids';
import { enqueueJobs, getJob, type Job } from './queue';

/** A document as it was uploaded, and the summary job made for it. */

export interface UploadRequest {
  clientId: string;
  content: Buffer;
  /** The media type, without parameters: what the job shows. */
  contentType: string;
  /** The charset of a text document when it is not UTF-8 (canonical WHATWG name), else null. */
  charset?: string | null;
  filename: string | null;
  priority: number;
  runAt: Date | null;
  maxAttempts: number;
  maxSentences: number | null;
  dependsOn: string[];
  idempotencyKey: string | null;
  /** Fingerprint of the whole request, to tell a replay from a conflicting reuse of the key. */
  requestHash: string;
}

export type SubmitResult =
  | { kind: 'created'; job: Job }
  | { kind: 'replayed'; job: Job }
  | { kind: 'key_conflict'; job: Job };

export interface StoredUpload {
  id: string;
  content: Buffer;
  contentType: string;
  filename: string | null;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Stores the upload and enqueues its job in one transaction. */
export async function submitUpload(pool: Pool, req: UploadRequest): Promise<SubmitResult> {
  if (req.idempotencyKey) {
    const existing = await findByKey(pool, req.clientId, req.idempotencyKey);
    if (existing) return existing.requestHash === req.requestHash ? { kind: 'replayed', job: existing } : { kind: 'key_conflict', job: existing };
  }
  const uploadId = uuidv7();
  const outcome = await withTransaction(pool, async (tx) => {
    const [result] = await enqueueJobs(tx, [
      {
        clientId: req.clientId,
        uploadId,
        payload: { contentType: req.contentType, filename: req.filename, ...(req.maxSentences ? { maxSentences: req.maxSentences } : {}) },
        priority: req.priority,
        runAt: req.runAt,
        maxAttempts: req.maxAttempts,
        idempotencyKey: req.idempotencyKey,
        requestHash: req.requestHash,
        dependsOn: req.dependsOn,
      },
    ]);
    // A concurrent request with the same key won the race: keep nothing of ours.
    if (!result!.created) return { kind: 'lost_race' as const };
    await tx.query(
      `INSERT INTO uploads (id, client_id, filename, content_type, size_bytes, sha256, content)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [uploadId, req.clientId, req.filename, storedContentType(req), req.content.length, sha256(req.content), req.content],
    );
    return { kind: 'created' as const, job: result!.job };
  });
  if (outcome.kind === 'created') return outcome;
  const existing = await findByKey(pool, req.clientId, req.idempotencyKey!);
  return existing!.requestHash === req.requestHash ? { kind: 'replayed', job: existing! } : { kind: 'key_conflict', job: existing! };
}

/**
 * The document is stored as uploaded, bytes untouched; a non-UTF-8 charset
 * travels with it as a Content-Type parameter, which the summarizer decodes by.
 */
function storedContentType(req: Pick<UploadRequest, 'contentType' | 'charset'>): string {
  return req.charset ? `${req.contentType}; charset=${req.charset}` : req.contentType;
}

async function findByKey(db: Db, clientId: string, key: string): Promise<Job | null> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM summary_jobs WHERE client_id = $1 AND idempotency_key = $2`,
    [clientId, key],
  );
  return rows[0] ? getJob(db, rows[0].id, clientId) : null;
}

export async function loadUpload(db: Db, uploadId: string, clientId: string): Promise<StoredUpload | null> {
  const { rows } = await db.query<{ id: string; content: Buffer; content_type: string; filename: string | null }>(
    `SELECT id, content, content_type, filename FROM uploads WHERE id = $1 AND client_id = $2`,
    [uploadId, clientId],
  );
  const r = rows[0];
  return r ? { id: r.id, content: r.content, contentType: r.content_type, filename: r.filename } : null;
}
