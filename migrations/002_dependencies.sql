-- 002: job dependencies. A job runs once every job it depends on completed;
-- summary_jobs.pending_dependencies counts the ones still outstanding, so the
-- claim path never joins this table.

CREATE TABLE job_dependencies (
  job_id      uuid NOT NULL,
  depends_on  uuid NOT NULL,
  PRIMARY KEY (depends_on, job_id)
);
CREATE INDEX job_dependencies_job ON job_dependencies (job_id);

-- Set on a job as soon as another names it, so finishing a job without
-- dependents (nearly all of them) skips the dependency step entirely.
ALTER TABLE summary_jobs ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;

-- Jobs held back by dependencies, for statistics and the dashboard.
CREATE INDEX summary_jobs_waiting ON summary_jobs (client_id)
  WHERE status = 'queued' AND pending_dependencies > 0;
