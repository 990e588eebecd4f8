-- 003: fair claiming across clients and rate limits.

-- Each client's runnable jobs in its own claim order. The fair claim walks the
-- distinct client_ids of this index (a skip scan) and takes the head of each.
CREATE INDEX summary_jobs_client_runnable ON summary_jobs (client_id, priority DESC, run_at, id)
  WHERE status = 'queued' AND pending_dependencies = 0;

-- Limits on starting jobs, per client or per job type, edited at runtime.
--   max_per_interval: at most this many jobs started per interval (fixed window)
--   max_running:      at most this many running at once
-- NULL means no limit of that kind. The claim locks these rows, so concurrent
-- processors take turns while limits exist and can never overshoot them.
CREATE TABLE rate_limits (
  scope             text NOT NULL CHECK (scope IN ('client', 'job_type')),
  -- The client's id, or the job type.
  key               text NOT NULL,
  max_per_interval  integer CHECK (max_per_interval >= 0),
  interval_seconds  integer NOT NULL DEFAULT 60 CHECK (interval_seconds > 0),
  max_running       integer CHECK (max_running >= 0),
  window_start      timestamptz NOT NULL DEFAULT now(),
  started_in_window integer NOT NULL DEFAULT 0,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
