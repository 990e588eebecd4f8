-- 001: clients, uploads and the summary_jobs queue.
--
-- summary_jobs is the hot table. It has no foreign keys on purpose: an FK check
-- takes a KEY SHARE lock on the parent row, and thousands of concurrent enqueues
-- for one client would then contend on that client's row (multixacts). The
-- application writes client_id from the authenticated request only.

CREATE TABLE clients (
  id            uuid PRIMARY KEY,
  name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  -- sha256 of the API key; the key itself is shown once, at creation.
  api_key_hash  text NOT NULL UNIQUE,
  key_prefix    text NOT NULL,
  -- Share of the claim when clients compete (fairness); 1 is the default plan.
  weight        integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 100),
  created_at    timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz
);

CREATE TABLE uploads (
  id            uuid PRIMARY KEY,
  client_id     uuid NOT NULL REFERENCES clients (id),
  filename      text,
  content_type  text NOT NULL,
  size_bytes    integer NOT NULL,
  sha256        text NOT NULL,
  content       bytea NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uploads_client ON uploads (client_id, created_at);

CREATE TABLE summary_jobs (
  -- UUIDv7 made by the application: time-ordered, so the primary key and the
  -- per-client listing index grow at their right edge like a sequence would.
  id                uuid PRIMARY KEY,
  client_id         uuid NOT NULL,
  job_type          text NOT NULL DEFAULT 'summarize',
  upload_id         uuid,
  payload           jsonb NOT NULL DEFAULT '{}',
  status            text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  -- Higher runs first.
  priority          smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
  -- Not before this time: delayed jobs, and the next attempt of a retried job.
  run_at            timestamptz NOT NULL DEFAULT now(),
  attempts          integer NOT NULL DEFAULT 0,
  max_attempts      integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 100),
  -- The lease: who runs it, the fencing token every write-back must present,
  -- and when it lapses unless heartbeated.
  lease_owner       text,
  lease_token       uuid,
  lease_expires_at  timestamptz,
  heartbeat_at      timestamptz,
  last_error        text,
  result            jsonb,
  progress_percent  smallint CHECK (progress_percent BETWEEN 0 AND 100),
  progress_message  text,
  idempotency_key   text,
  -- Hash of the request that used idempotency_key, to tell a replay from a conflict.
  request_hash      text,
  -- Jobs this one still waits for (job dependencies); runnable only at 0.
  pending_dependencies integer NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  CHECK ((status = 'running') = (lease_token IS NOT NULL))
);

-- The claim path: runnable jobs in claim order. Partial, so it only ever holds
-- the backlog, however many finished jobs the table keeps.
CREATE INDEX summary_jobs_runnable ON summary_jobs (priority DESC, run_at, id)
  WHERE status = 'queued' AND pending_dependencies = 0;

-- The reaper: leases in flight by expiry.
CREATE INDEX summary_jobs_leases ON summary_jobs (lease_expires_at)
  WHERE status = 'running';

-- A client's jobs, newest first (UUIDv7 order), for listing with a keyset cursor.
CREATE INDEX summary_jobs_client ON summary_jobs (client_id, id);

-- Finished jobs by age, for retention and throughput over time.
CREATE INDEX summary_jobs_finished ON summary_jobs (finished_at)
  WHERE finished_at IS NOT NULL;

CREATE UNIQUE INDEX summary_jobs_idempotency ON summary_jobs (client_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- The queue churns: vacuum it early so dead tuples from claims and completions
-- do not pile up between autovacuum runs.
ALTER TABLE summary_jobs SET (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_analyze_scale_factor = 0.02,
  fillfactor = 90
);
