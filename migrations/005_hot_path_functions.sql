-- 005: the queue's hot path (claim, complete, complete-and-claim) as one
-- function whose plans are made once per database connection.
--
-- A statement sent with parameters but no name (node-postgres's unnamed
-- statements: named ones would pin RDS Proxy connections) is parsed and planned
-- on every call. For a claim of one job the planning cost more than the work:
-- summary_jobs has eight indexes, six of them partial, and each one is weighed
-- and its predicate proved on every plan. PL/pgSQL keeps a function's plans for
-- the life of the server connection (which RDS Proxy reuses across clients), so
-- these statements are planned once per connection instead. One function, not
-- three that call each other: each nested PL/pgSQL call cost more than it saved.
--
-- plan_cache_mode = force_generic_plan: left to choose, the cache would plan
-- every call afresh, since a custom plan that knows "LIMIT 1" always looks
-- cheaper than the generic one. The generic plan cannot know the limit, so the
-- claim picks its ids first and the update reaches them by primary key.
--
-- #variable_conflict use_column: an OUT column such as id never shadows a
-- table column inside these statements.

-- Completes the jobs in p_ids whose lease token (p_tokens) still matches, then
-- leases up to p_limit jobs to p_owner: the next runnable ones in strict
-- priority order (highest priority, then oldest), or exactly p_picked when
-- given (the fair claim in queue.ts picks and locks its own). One call, one
-- commit. Returns one row per claimed job; the ids completed, and those of
-- them other jobs depend on, ride on the first row only (a single row of NULL
-- job columns when nothing was claimed), so they are not sent once per job.
CREATE FUNCTION summary_jobs_complete_and_claim(
  p_ids uuid[], p_tokens uuid[], p_results jsonb[],
  p_owner text, p_limit integer, p_lease_seconds float8,
  p_picked uuid[] DEFAULT NULL)
RETURNS TABLE (done_ids uuid[], parent_ids uuid[], id uuid, client_id uuid, job_type text, upload_id uuid,
               payload jsonb, priority smallint, run_at timestamptz, attempts integer, max_attempts integer,
               lease_owner text, lease_token uuid, lease_expires_at timestamptz)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  v_done uuid[] := '{}';
  v_parents uuid[] := '{}';
  v_pick uuid[] := '{}';
BEGIN
  IF cardinality(p_ids) > 0 THEN
    WITH done AS (
      UPDATE summary_jobs j
      SET status = 'completed', result = c.result, progress_percent = 100, progress_message = NULL,
          lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
          finished_at = now(), updated_at = now()
      FROM unnest(p_ids, p_tokens, p_results) AS c(id, token, result)
      WHERE j.id = c.id AND j.lease_token = c.token
      RETURNING j.id, j.has_dependents
    )
    SELECT coalesce(array_agg(d.id), '{}'), coalesce(array_agg(d.id) FILTER (WHERE d.has_dependents), '{}')
    INTO v_done, v_parents
    FROM done d;
  END IF;

  IF p_picked IS NOT NULL THEN
    v_pick := p_picked;
  ELSIF p_limit > 0 THEN
    v_pick := ARRAY(
      SELECT s.id FROM summary_jobs s
      WHERE s.status = 'queued' AND s.pending_dependencies = 0 AND s.run_at <= now()
      ORDER BY s.priority DESC, s.run_at, s.id
      LIMIT p_limit
      FOR UPDATE SKIP LOCKED);
  END IF;

  -- Nothing to lease (a completion only, or an empty queue): skip the UPDATE,
  -- whose start-up alone (eight indexes opened) costs more than this row.
  IF cardinality(v_pick) = 0 THEN
    RETURN QUERY SELECT v_done, v_parents, NULL::uuid, NULL::uuid, NULL::text, NULL::uuid, NULL::jsonb,
                        NULL::smallint, NULL::timestamptz, NULL::integer, NULL::integer, NULL::text, NULL::uuid,
                        NULL::timestamptz;
    RETURN;
  END IF;

  RETURN QUERY
  WITH claimed AS (
    UPDATE summary_jobs j
    SET status = 'running',
        attempts = j.attempts + 1,
        lease_owner = p_owner,
        lease_token = gen_random_uuid(),
        lease_expires_at = now() + p_lease_seconds * interval '1 second',
        heartbeat_at = now(),
        started_at = coalesce(j.started_at, now()),
        progress_percent = NULL,
        progress_message = NULL,
        updated_at = now()
    WHERE j.id = ANY (v_pick)
    RETURNING j.id, j.client_id, j.job_type, j.upload_id, j.payload, j.priority, j.run_at, j.attempts,
              j.max_attempts, j.lease_owner, j.lease_token, j.lease_expires_at
  )
  SELECT CASE WHEN coalesce(c.n, 1) = 1 THEN v_done END, CASE WHEN coalesce(c.n, 1) = 1 THEN v_parents END,
         c.id, c.client_id, c.job_type, c.upload_id, c.payload, c.priority, c.run_at, c.attempts, c.max_attempts,
         c.lease_owner, c.lease_token, c.lease_expires_at
  FROM (SELECT 1) one
  LEFT JOIN (SELECT claimed.*, row_number() OVER () AS n FROM claimed) c ON true;
END $$;
