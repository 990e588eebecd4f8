-- 004: recurring jobs. A schedule enqueues one job per cron tick; the job's
-- idempotency key names the tick, so even two processors that both see it due
-- enqueue it once.

CREATE TABLE recurring_jobs (
  id            uuid PRIMARY KEY,
  client_id     uuid NOT NULL REFERENCES clients (id),
  name          text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
  cron          text NOT NULL,
  timezone      text NOT NULL DEFAULT 'UTC',
  job_type      text NOT NULL DEFAULT 'digest',
  payload       jsonb NOT NULL DEFAULT '{}',
  priority      smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
  next_run_at   timestamptz NOT NULL,
  last_tick_at  timestamptz,
  last_job_id   uuid,
  -- Ticks that passed while nothing ran (processor down): coalesced into one job.
  missed_ticks  bigint NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (client_id, name)
);
CREATE INDEX recurring_jobs_due ON recurring_jobs (next_run_at);
