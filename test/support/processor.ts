import type { Pool } from 'pg';
import type { Invocation } from '../../lambda/core/processor';

/** A Lambda context with a real clock: remaining time counts down from `timeoutMs`. */
export function fakeInvocation(timeoutMs: number, requestId = `req-${Math.random().toString(36).slice(2, 10)}`): Invocation {
  const deadline = Date.now() + timeoutMs;
  return { awsRequestId: requestId, getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
}

/**
 * Records every transition of a job into 'completed', as the database saw it,
 * so tests can prove that no job was completed twice.
 */
export async function installCompletionAudit(pool: Pool): Promise<void> {
  await pool.query(`
    CREATE TABLE completion_audit (job_id uuid NOT NULL, lease_owner text, at timestamptz NOT NULL DEFAULT clock_timestamp());
    CREATE FUNCTION audit_completion() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO completion_audit (job_id, lease_owner) VALUES (NEW.id, OLD.lease_owner);
      RETURN NEW;
    END $$;
    CREATE TRIGGER audit_completion AFTER UPDATE OF status ON summary_jobs
      FOR EACH ROW WHEN (NEW.status = 'completed' AND OLD.status IS DISTINCT FROM 'completed')
      EXECUTE FUNCTION audit_completion();
  `);
}
