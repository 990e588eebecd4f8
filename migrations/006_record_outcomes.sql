-- 006: outcomes recorded as one unit. A processor's batch of outcomes
-- (completed, failed, snoozed, released unstarted) and the claim of its next
-- jobs are one call and one commit, and every state change of a job moves its
-- dependents in the same transaction (no second statement that could fail and
-- leave them waiting). Also: attempt history, snoozes, the fair claim in claim
-- order and without under-fill, and the dependency repair sweep.
--
-- Functions of 005 are replaced here with CREATE OR REPLACE; 005 stays as it was
-- applied (migrations are checksummed).

-- Every failed attempt: {"at", "attempt", "error", "retryable", "worker",
-- "clientCaused"}, where retryable says whether another attempt was allowed to
-- follow and clientCaused whether the client's document was the problem
-- (unreadable, empty, too large), so client errors can be counted per client.
-- NULL (no failure yet) costs nothing in the row; bounded by max_attempts
-- (at most 100) plus reaps and dependency failures.
ALTER TABLE summary_jobs ADD COLUMN attempt_errors jsonb;
-- Runs put back without spending an attempt (throttling upstream, the database
-- going away mid-attempt); bounded by the processor so a job cannot loop forever.
ALTER TABLE summary_jobs ADD COLUMN snoozes integer NOT NULL DEFAULT 0;

-- What each rate limit still allows now: its window's remaining starts and its
-- max_running's remaining slots, the smaller of the two. Shared by the claim
-- (which must not overshoot) and the statistics (which must not call a job held
-- by a limit "late").
CREATE FUNCTION summary_jobs_rate_allowances()
RETURNS TABLE (scope text, key text, allowance integer)
LANGUAGE sql STABLE AS $$
  SELECT a.scope, a.key, a.allowance FROM (
    -- least() skips NULLs: a limit of one kind only is that limit; none, no allowance row.
    SELECT l.scope, l.key,
           least(l.max_per_interval
                   - CASE WHEN l.window_start + l.interval_seconds * interval '1 second' > now()
                          THEN l.started_in_window ELSE 0 END,
                 -- Running jobs are counted only for a limit that has max_running.
                 CASE WHEN l.max_running IS NOT NULL THEN
                   l.max_running
                     - (SELECT count(*) FROM summary_jobs r
                        WHERE r.status = 'running'
                          AND CASE l.scope WHEN 'client' THEN r.client_id::text = l.key ELSE r.job_type = l.key END)
                 END
                )::integer AS allowance
    FROM rate_limits l
  ) a
  WHERE a.allowance IS NOT NULL
$$;

-- Moves the dependents of jobs that just finished, inside the caller's
-- transaction: a completed parent releases one pending dependency of each
-- queued child; a parent failed for good or cancelled fails its queued
-- children, naming itself, and so on down the chain. Two statements per round,
-- not one: a child with a completed and a failed parent in the same round would
-- otherwise be updated twice by one statement.
CREATE FUNCTION summary_jobs_settle_dependents(p_finished uuid[])
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_frontier uuid[] := p_finished;
  v_failed integer := 0;
BEGIN
  WHILE cardinality(v_frontier) > 0 LOOP
    UPDATE summary_jobs c
    SET pending_dependencies = c.pending_dependencies - x.n, updated_at = now()
    FROM (SELECT d.job_id, count(*)::integer AS n
          FROM job_dependencies d JOIN summary_jobs f ON f.id = d.depends_on
          WHERE d.depends_on = ANY (v_frontier) AND f.status = 'completed'
          GROUP BY d.job_id) x
    WHERE c.id = x.job_id AND c.status = 'queued';

    WITH doomed AS (
      UPDATE summary_jobs c
      SET status = 'failed', finished_at = now(), updated_at = now(),
          last_error = 'dependency ' || x.parent || ' ' || x.parent_status || '; not run'
      FROM (SELECT DISTINCT ON (d.job_id) d.job_id, f.id AS parent, f.status AS parent_status
            FROM job_dependencies d JOIN summary_jobs f ON f.id = d.depends_on
            WHERE d.depends_on = ANY (v_frontier) AND f.status IN ('failed', 'cancelled')
            ORDER BY d.job_id, f.id) x
      WHERE c.id = x.job_id AND c.status = 'queued'
      RETURNING c.id, c.has_dependents
    )
    SELECT coalesce(array_agg(d.id) FILTER (WHERE d.has_dependents), '{}'), v_failed + count(*)
    INTO v_frontier, v_failed
    FROM doomed d;
  END LOOP;
  RETURN v_failed;
END $$;

-- The hot path of 005, with three changes:
--  * the completed jobs' dependents move in the same call (before the claim,
--    so a released child can be claimed at once);
--  * the fair claim gives a share only to clients with a job runnable now (a
--    client whose jobs are all delayed took a share and under-filled the batch),
--    and tops the batch up in priority order from jobs no limit governs when
--    the shares leave it short;
--  * rows come back in claim order (fair: interleaved across clients), which
--    the processor keeps when it starts them.
CREATE OR REPLACE FUNCTION summary_jobs_complete_and_claim(
  p_ids uuid[], p_tokens uuid[], p_results jsonb[],
  p_owner text, p_limit integer, p_lease_seconds float8,
  p_fair boolean DEFAULT false)
RETURNS TABLE (done_ids uuid[], parent_ids uuid[], id uuid, client_id uuid, job_type text, upload_id uuid,
               payload jsonb, priority smallint, run_at timestamptz, attempts integer, max_attempts integer,
               lease_owner text, lease_token uuid, lease_expires_at timestamptz)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET jit = off AS $$
#variable_conflict use_column
DECLARE
  v_done uuid[] := '{}';
  v_parents uuid[] := '{}';
  v_pick uuid[] := '{}';
  v_limited boolean := false;
  v_client_keys text[] := '{}';
  v_client_caps integer[] := '{}';
  v_types_blocked text[] := '{}';
  v_type_names text[] := '{}';
  v_type_caps integer[] := '{}';
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
    IF cardinality(v_parents) > 0 THEN
      PERFORM summary_jobs_settle_dependents(v_parents);
    END IF;
  END IF;

  IF p_limit > 0 AND NOT p_fair THEN
    v_pick := ARRAY(
      SELECT s.id FROM summary_jobs s
      WHERE s.status = 'queued' AND s.pending_dependencies = 0 AND s.run_at <= now()
      ORDER BY s.priority DESC, s.run_at, s.id
      LIMIT p_limit
      FOR UPDATE SKIP LOCKED);
  ELSIF p_limit > 0 THEN
    PERFORM 1 FROM rate_limits ORDER BY scope, key FOR UPDATE;
    v_limited := FOUND;
    IF v_limited THEN
      SELECT coalesce(array_agg(a.key) FILTER (WHERE a.scope = 'client'), '{}'),
             coalesce(array_agg(greatest(a.allowance, 0)) FILTER (WHERE a.scope = 'client'), '{}'),
             coalesce(array_agg(a.key) FILTER (WHERE a.scope = 'job_type' AND a.allowance <= 0), '{}'),
             coalesce(array_agg(a.key) FILTER (WHERE a.scope = 'job_type' AND a.allowance > 0), '{}'),
             coalesce(array_agg(a.allowance) FILTER (WHERE a.scope = 'job_type' AND a.allowance > 0), '{}')
      INTO v_client_keys, v_client_caps, v_types_blocked, v_type_names, v_type_caps
      FROM summary_jobs_rate_allowances() a;
    END IF;

    -- The fair pick, in the same words twice. With no job type held back (no
    -- job type limit spent, the usual case) it is a static statement, planned
    -- once per connection: planning it cost more than running it (1.5-1.8 ms
    -- against 1.3-2.5 ms a call, 10 clients, 20k-100k queued). Its generic plan
    -- walks the per-client index in order with the LIMIT, like the custom one.
    -- With a job type held back, the filter on it makes a generic plan sort
    -- each client's whole backlog (005: 150 ms against 2 ms), so that case is
    -- planned per call (EXECUTE).
    IF cardinality(v_types_blocked) = 0 THEN
      v_pick := ARRAY(
        -- Only clients with a job runnable now share the batch: the walk from
        -- client to client skips those whose jobs are all delayed, in the same
        -- index descent that finds the next client.
        WITH RECURSIVE active(client_id) AS (
          (SELECT s.client_id FROM summary_jobs s
           WHERE s.status = 'queued' AND s.pending_dependencies = 0 AND s.run_at <= now()
           ORDER BY s.client_id LIMIT 1)
          UNION ALL
          SELECT (SELECT s.client_id FROM summary_jobs s
                  WHERE s.status = 'queued' AND s.pending_dependencies = 0 AND s.run_at <= now()
                    AND s.client_id > a.client_id
                  ORDER BY s.client_id LIMIT 1)
          FROM active a WHERE a.client_id IS NOT NULL
        ), weighted AS (
          SELECT a.client_id, coalesce(c.weight, 1) AS weight, cc.cap
          FROM active a
          LEFT JOIN clients c ON c.id = a.client_id
          LEFT JOIN unnest(v_client_keys, v_client_caps) AS cc(client_key, cap) ON cc.client_key = a.client_id::text
          WHERE a.client_id IS NOT NULL AND coalesce(cc.cap, 1) > 0
        ), offered AS (
          SELECT o.*, w.weight,
                 row_number() OVER (PARTITION BY o.client_id ORDER BY o.priority DESC, o.run_at, o.id) AS rn
          FROM weighted w
          CROSS JOIN (SELECT sum(weight) AS total FROM weighted) t
          CROSS JOIN LATERAL (
            -- The client's own range of summary_jobs_client_runnable, in order. Written
            -- as a range, and ordered by client_id too, so no plan can read the global
            -- runnable index instead, filtering on the client: that plan (chosen or not
            -- depending on the statistics' correlation) walks past every other
            -- client's jobs and the rows other claimers hold, once per client
            -- (measured: 105-111 against 69 pg CPU us/job, 200k queued, 8 claimers).
            SELECT s.id, s.client_id, s.job_type, s.priority, s.run_at FROM summary_jobs s
            WHERE s.client_id >= w.client_id AND s.client_id <= w.client_id
              AND s.status = 'queued' AND s.pending_dependencies = 0
              AND s.run_at <= now()
            ORDER BY s.client_id, s.priority DESC, s.run_at, s.id
            LIMIT least(p_limit, coalesce(w.cap, p_limit), ceil(2.0 * p_limit * w.weight / t.total)::integer)
            FOR UPDATE SKIP LOCKED
          ) o
        ), ranked AS (
          SELECT o.*, row_number() OVER (PARTITION BY o.job_type
                                         ORDER BY o.rn::float8 / o.weight, o.priority DESC, o.run_at, o.id) AS tn
          FROM offered o
        )
        SELECT r.id FROM ranked r
        LEFT JOIN unnest(v_type_names, v_type_caps) AS tc(job_type, cap) ON tc.job_type = r.job_type
        WHERE tc.cap IS NULL OR r.tn <= tc.cap
        ORDER BY r.rn::float8 / r.weight, r.priority DESC, r.run_at, r.id
        LIMIT p_limit);
    ELSE
      EXECUTE $fair$
      SELECT ARRAY(
        WITH RECURSIVE active(client_id) AS (
          (SELECT s.client_id FROM summary_jobs s
           WHERE s.status = 'queued' AND s.pending_dependencies = 0 ORDER BY s.client_id LIMIT 1)
          UNION ALL
          SELECT (SELECT s.client_id FROM summary_jobs s
                  WHERE s.status = 'queued' AND s.pending_dependencies = 0 AND s.client_id > a.client_id
                  ORDER BY s.client_id LIMIT 1)
          FROM active a WHERE a.client_id IS NOT NULL
        ), weighted AS (
          -- Only clients with a job runnable now share the batch. The probe reads
          -- the same index range the client's offer below reads anyway.
          SELECT a.client_id, coalesce(c.weight, 1) AS weight, cc.cap
          FROM active a
          LEFT JOIN clients c ON c.id = a.client_id
          LEFT JOIN unnest($1, $2) AS cc(client_key, cap) ON cc.client_key = a.client_id::text
          WHERE a.client_id IS NOT NULL AND coalesce(cc.cap, 1) > 0
            AND EXISTS (SELECT 1 FROM summary_jobs s
                        WHERE s.client_id = a.client_id AND s.status = 'queued' AND s.pending_dependencies = 0
                          AND s.run_at <= now() AND s.job_type <> ALL ($3))
        ), offered AS (
          SELECT o.*, w.weight,
                 row_number() OVER (PARTITION BY o.client_id ORDER BY o.priority DESC, o.run_at, o.id) AS rn
          FROM weighted w
          CROSS JOIN (SELECT sum(weight) AS total FROM weighted) t
          CROSS JOIN LATERAL (
            -- The client's own range of summary_jobs_client_runnable, in order. Written
            -- as a range, and ordered by client_id too, so no plan can read the global
            -- runnable index instead, filtering on the client: that plan (chosen or not
            -- depending on the statistics' correlation) walks past every other
            -- client's jobs and the rows other claimers hold, once per client
            -- (measured: 105-111 against 69 pg CPU us/job, 200k queued, 8 claimers).
            SELECT s.id, s.client_id, s.job_type, s.priority, s.run_at FROM summary_jobs s
            WHERE s.client_id >= w.client_id AND s.client_id <= w.client_id
              AND s.status = 'queued' AND s.pending_dependencies = 0
              AND s.run_at <= now() AND s.job_type <> ALL ($3)
            ORDER BY s.client_id, s.priority DESC, s.run_at, s.id
            LIMIT least($6, coalesce(w.cap, $6), ceil(2.0 * $6 * w.weight / t.total)::integer)
            FOR UPDATE SKIP LOCKED
          ) o
        ), ranked AS (
          SELECT o.*, row_number() OVER (PARTITION BY o.job_type
                                         ORDER BY o.rn::float8 / o.weight, o.priority DESC, o.run_at, o.id) AS tn
          FROM offered o
        )
        SELECT r.id FROM ranked r
        LEFT JOIN unnest($4, $5) AS tc(job_type, cap) ON tc.job_type = r.job_type
        WHERE tc.cap IS NULL OR r.tn <= tc.cap
        ORDER BY r.rn::float8 / r.weight, r.priority DESC, r.run_at, r.id
        LIMIT $6)
      $fair$
      INTO v_pick
      USING v_client_keys, v_client_caps, v_types_blocked, v_type_names, v_type_caps, p_limit;
    END IF;

    -- Shares left the batch short (few clients, one with a backlog): top it up
    -- in priority order, from jobs that no limit governs, so the counting above
    -- stays exact. Rows this transaction locked are not skipped by SKIP LOCKED,
    -- hence the explicit exclusion.
    IF cardinality(v_pick) < p_limit THEN
      v_pick := v_pick || ARRAY(
        SELECT s.id FROM summary_jobs s
        WHERE s.status = 'queued' AND s.pending_dependencies = 0 AND s.run_at <= now()
          AND s.id <> ALL (v_pick)
          AND s.client_id::text <> ALL (v_client_keys)
          AND s.job_type <> ALL (v_types_blocked) AND s.job_type <> ALL (v_type_names)
        ORDER BY s.priority DESC, s.run_at, s.id
        LIMIT p_limit - cardinality(v_pick)
        FOR UPDATE SKIP LOCKED);
    END IF;

    IF v_limited AND cardinality(v_pick) > 0 THEN
      UPDATE rate_limits l
      SET started_in_window = CASE WHEN l.window_start + l.interval_seconds * interval '1 second' > now()
                                   THEN l.started_in_window + t.n ELSE t.n END,
          window_start = CASE WHEN l.window_start + l.interval_seconds * interval '1 second' > now()
                              THEN l.window_start ELSE now() END
      FROM (SELECT 'client' AS scope, s.client_id::text AS key, count(*)::integer AS n
            FROM summary_jobs s WHERE s.id = ANY (v_pick) GROUP BY s.client_id
            UNION ALL
            SELECT 'job_type', s.job_type, count(*)::integer
            FROM summary_jobs s WHERE s.id = ANY (v_pick) GROUP BY s.job_type) t
      WHERE l.scope = t.scope AND l.key = t.key AND l.max_per_interval IS NOT NULL;
    END IF;
  END IF;

  IF cardinality(v_pick) > 0 THEN
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
    SELECT CASE WHEN p.ord = 1 THEN v_done END, CASE WHEN p.ord = 1 THEN v_parents END,
           c.id, c.client_id, c.job_type, c.upload_id, c.payload, c.priority, c.run_at, c.attempts, c.max_attempts,
           c.lease_owner, c.lease_token, c.lease_expires_at
    FROM claimed c JOIN unnest(v_pick) WITH ORDINALITY AS p(id, ord) ON p.id = c.id
    ORDER BY p.ord;
    IF FOUND THEN
      RETURN;
    END IF;
  END IF;
  RETURN QUERY SELECT v_done, v_parents, NULL::uuid, NULL::uuid, NULL::text, NULL::uuid, NULL::jsonb,
                      NULL::smallint, NULL::timestamptz, NULL::integer, NULL::integer, NULL::text, NULL::uuid,
                      NULL::timestamptz;
END $$;

-- A worker's batch of outcomes and its next claim, one call, one commit:
--   failed    retried with exponential backoff and equal jitter (50-100% of
--             base * 2^(attempt-1), capped), or failed for good when the error
--             is not retryable or the attempts are spent; the attempt's error
--             joins attempt_errors either way;
--   snoozed   queued again after the given seconds, the attempt not spent,
--             while the job has snoozed fewer than p_max_snoozes times; past
--             that, a retryable failure;
--   released  claimed but never started: queued again at its old place, the
--             attempt not spent;
--   completed and the claim: summary_jobs_complete_and_claim.
-- Every write is fenced by the lease token; a job whose token no longer
-- matches is left alone and reported as not held. Dependents of jobs failed
-- for good move in the same transaction. The first row carries `recorded`:
-- {"failed": [{id, status, attempts, runAt}], "snoozed": [ids], "released": [ids]}.
CREATE FUNCTION summary_jobs_record(
  p_done_ids uuid[], p_done_tokens uuid[], p_results jsonb[],
  p_fail_ids uuid[], p_fail_tokens uuid[], p_fail_errors text[], p_fail_retryable boolean[],
  p_fail_client_caused boolean[],
  p_snooze_ids uuid[], p_snooze_tokens uuid[], p_snooze_seconds float8[], p_snooze_reasons text[],
  p_release_ids uuid[], p_release_tokens uuid[],
  p_owner text, p_limit integer, p_lease_seconds float8, p_fair boolean,
  p_backoff_base float8, p_backoff_max float8, p_max_snoozes integer)
RETURNS TABLE (recorded jsonb, done_ids uuid[], id uuid, client_id uuid, job_type text, upload_id uuid,
               payload jsonb, priority smallint, run_at timestamptz, attempts integer, max_attempts integer,
               lease_owner text, lease_token uuid, lease_expires_at timestamptz)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET jit = off AS $$
#variable_conflict use_column
DECLARE
  v_snoozed uuid[] := '{}';
  v_released uuid[] := '{}';
  v_failed jsonb := '[]';
  v_dead uuid[] := '{}';
  v_fail_ids uuid[] := p_fail_ids;
  v_fail_tokens uuid[] := p_fail_tokens;
  v_fail_errors text[] := p_fail_errors;
  v_fail_retryable boolean[] := p_fail_retryable;
  v_fail_client_caused boolean[] := p_fail_client_caused;
  v_recorded jsonb;
  v_first boolean := true;
  v_row record;
BEGIN
  IF cardinality(p_snooze_ids) > 0 THEN
    WITH s AS (
      UPDATE summary_jobs j
      SET status = 'queued', attempts = j.attempts - 1, snoozes = j.snoozes + 1,
          run_at = now() + s.seconds * interval '1 second',
          lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
          progress_percent = NULL, progress_message = NULL, updated_at = now()
      FROM unnest(p_snooze_ids, p_snooze_tokens, p_snooze_seconds) AS s(id, token, seconds)
      WHERE j.id = s.id AND j.lease_token = s.token AND j.snoozes < p_max_snoozes
      RETURNING j.id
    )
    SELECT coalesce(array_agg(s.id), '{}') INTO v_snoozed FROM s;
    -- Past the bound: an ordinary retryable failure, which spends the attempt.
    SELECT v_fail_ids || coalesce(array_agg(s.id), '{}'), v_fail_tokens || coalesce(array_agg(s.token), '{}'),
           v_fail_errors || coalesce(array_agg('snoozed ' || p_max_snoozes || ' times, the limit: ' || s.reason), '{}'),
           v_fail_retryable || coalesce(array_agg(true), '{}'),
           v_fail_client_caused || coalesce(array_agg(false), '{}')
    INTO v_fail_ids, v_fail_tokens, v_fail_errors, v_fail_retryable, v_fail_client_caused
    FROM unnest(p_snooze_ids, p_snooze_tokens, p_snooze_reasons) AS s(id, token, reason)
    WHERE s.id <> ALL (v_snoozed);
  END IF;

  IF cardinality(v_fail_ids) > 0 THEN
    WITH f AS (
      UPDATE summary_jobs j
      SET status = CASE WHEN f.retryable AND j.attempts < j.max_attempts THEN 'queued' ELSE 'failed' END,
          run_at = CASE WHEN f.retryable AND j.attempts < j.max_attempts
                        THEN now() + least(p_backoff_max, p_backoff_base * power(2, j.attempts - 1))
                                     * (0.5 + random() * 0.5) * interval '1 second'
                        ELSE j.run_at END,
          finished_at = CASE WHEN f.retryable AND j.attempts < j.max_attempts THEN NULL ELSE now() END,
          last_error = f.error,
          attempt_errors = coalesce(j.attempt_errors, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
            'at', now(), 'attempt', j.attempts, 'error', f.error,
            'retryable', f.retryable AND j.attempts < j.max_attempts, 'worker', j.lease_owner,
            'clientCaused', coalesce(f.client_caused, false))),
          lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
          progress_percent = NULL, progress_message = NULL,
          updated_at = now()
      FROM unnest(v_fail_ids, v_fail_tokens, v_fail_errors, v_fail_retryable, v_fail_client_caused)
           AS f(id, token, error, retryable, client_caused)
      WHERE j.id = f.id AND j.lease_token = f.token
      RETURNING j.id, j.status, j.attempts, j.run_at, j.has_dependents
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', f.id, 'status', f.status, 'attempts', f.attempts, 'runAt', f.run_at)), '[]'),
           coalesce(array_agg(f.id) FILTER (WHERE f.status = 'failed' AND f.has_dependents), '{}')
    INTO v_failed, v_dead
    FROM f;
    IF cardinality(v_dead) > 0 THEN
      PERFORM summary_jobs_settle_dependents(v_dead);
    END IF;
  END IF;

  IF cardinality(p_release_ids) > 0 THEN
    WITH r AS (
      UPDATE summary_jobs j
      SET status = 'queued', attempts = j.attempts - 1,
          lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
      FROM unnest(p_release_ids, p_release_tokens) AS r(id, token)
      WHERE j.id = r.id AND j.lease_token = r.token
      RETURNING j.id
    )
    SELECT coalesce(array_agg(r.id), '{}') INTO v_released FROM r;
  END IF;

  v_recorded := jsonb_build_object('failed', v_failed, 'snoozed', to_jsonb(v_snoozed), 'released', to_jsonb(v_released));
  FOR v_row IN
    SELECT * FROM summary_jobs_complete_and_claim(p_done_ids, p_done_tokens, p_results, p_owner, p_limit,
                                                  p_lease_seconds, p_fair)
  LOOP
    recorded := CASE WHEN v_first THEN v_recorded END;
    done_ids := v_row.done_ids;
    id := v_row.id; client_id := v_row.client_id; job_type := v_row.job_type; upload_id := v_row.upload_id;
    payload := v_row.payload; priority := v_row.priority; run_at := v_row.run_at; attempts := v_row.attempts;
    max_attempts := v_row.max_attempts; lease_owner := v_row.lease_owner; lease_token := v_row.lease_token;
    lease_expires_at := v_row.lease_expires_at;
    v_first := false;
    RETURN NEXT;
  END LOOP;
END $$;

-- The reaper: jobs whose worker stopped heartbeating go back to the queue, or
-- fail for good when their attempts are spent; the lapsed attempt joins the
-- history, and dependents of jobs failed for good move in the same call.
CREATE FUNCTION summary_jobs_reap(p_limit integer)
RETURNS TABLE (id uuid, client_id uuid, job_type text, status text, attempts integer, run_at timestamptz,
               last_error text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  v_rows jsonb;
  v_dead uuid[];
BEGIN
  WITH expired AS (
    SELECT s.id FROM summary_jobs s
    WHERE s.status = 'running' AND s.lease_expires_at < now()
    ORDER BY s.lease_expires_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ), reaped AS (
    UPDATE summary_jobs j
    SET status = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
        finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
        run_at = now(),
        last_error = 'lease expired: worker ' || coalesce(j.lease_owner, 'unknown')
                     || ' stopped heartbeating (crashed, timed out or froze) during attempt ' || j.attempts,
        attempt_errors = coalesce(j.attempt_errors, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
          'at', now(), 'attempt', j.attempts, 'retryable', j.attempts < j.max_attempts, 'worker', j.lease_owner,
          'error', 'lease expired: the worker stopped heartbeating (crashed, timed out or froze)', 'clientCaused', false)),
        lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
        progress_percent = NULL, progress_message = NULL,
        updated_at = now()
    FROM expired
    WHERE j.id = expired.id
    RETURNING j.id, j.client_id, j.job_type, j.status, j.attempts, j.run_at, j.last_error, j.has_dependents
  )
  SELECT coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'client_id', r.client_id, 'job_type', r.job_type,
           'status', r.status, 'attempts', r.attempts, 'run_at', r.run_at, 'last_error', r.last_error)), '[]'),
         coalesce(array_agg(r.id) FILTER (WHERE r.status = 'failed' AND r.has_dependents), '{}')
  INTO v_rows, v_dead
  FROM reaped r;
  IF cardinality(v_dead) > 0 THEN
    PERFORM summary_jobs_settle_dependents(v_dead);
  END IF;
  RETURN QUERY SELECT x.id, x.client_id, x.job_type, x.status, x.attempts, x.run_at, x.last_error
  FROM jsonb_to_recordset(v_rows) AS x(id uuid, client_id uuid, job_type text, status text, attempts integer,
                                       run_at timestamptz, last_error text);
END $$;

-- Cancels a queued job (a running one is left to finish); its dependents fail
-- in the same call.
CREATE FUNCTION summary_jobs_cancel(p_id uuid, p_client uuid)
RETURNS SETOF summary_jobs
LANGUAGE plpgsql AS $$
DECLARE
  v_job summary_jobs;
BEGIN
  UPDATE summary_jobs SET status = 'cancelled', finished_at = now(), updated_at = now(),
    last_error = coalesce(last_error, 'cancelled')
  WHERE summary_jobs.id = p_id AND (p_client IS NULL OR summary_jobs.client_id = p_client) AND summary_jobs.status = 'queued'
  RETURNING * INTO v_job;
  IF v_job.id IS NULL THEN
    RETURN;
  END IF;
  IF v_job.has_dependents THEN
    PERFORM summary_jobs_settle_dependents(ARRAY[p_id]);
  END IF;
  RETURN NEXT v_job;
END $$;

-- Repairs waiting jobs whose pending count disagrees with their parents (left
-- by versions that moved dependents in a second statement that could fail):
-- recounts the outstanding parents, fails a job whose parent failed or was
-- cancelled. A job with a parent running now is skipped: that parent's
-- completion may commit after this snapshot and release it. Looks at the
-- `p_limit` waiting jobs updated longest ago, so one call stays cheap.
CREATE FUNCTION summary_jobs_repair_dependencies(p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_fixed integer := 0;
  v_doomed uuid[];
BEGIN
  WITH candidates AS (
    SELECT j.id FROM summary_jobs j
    WHERE j.status = 'queued' AND j.pending_dependencies > 0 AND j.updated_at < now() - interval '1 minute'
    ORDER BY j.updated_at
    LIMIT p_limit
  ), counted AS (
    SELECT c.id,
           count(p.id) FILTER (WHERE p.status <> 'completed')::integer AS outstanding,
           bool_or(p.status = 'running') AS parent_running
    FROM candidates c
    LEFT JOIN job_dependencies d ON d.job_id = c.id
    LEFT JOIN summary_jobs p ON p.id = d.depends_on
    GROUP BY c.id
  ), fixed AS (
    UPDATE summary_jobs j SET pending_dependencies = k.outstanding, updated_at = now()
    FROM counted k
    WHERE j.id = k.id AND j.status = 'queued' AND NOT coalesce(k.parent_running, false)
      AND j.pending_dependencies <> k.outstanding
    RETURNING j.id
  )
  SELECT count(*) INTO v_fixed FROM fixed;

  -- Children of parents that failed or were cancelled, still queued.
  SELECT coalesce(array_agg(DISTINCT d.depends_on), '{}') INTO v_doomed
  FROM summary_jobs j
  JOIN job_dependencies d ON d.job_id = j.id
  JOIN summary_jobs p ON p.id = d.depends_on
  WHERE j.status = 'queued' AND j.pending_dependencies > 0 AND p.status IN ('failed', 'cancelled')
    AND j.updated_at < now() - interval '1 minute';
  IF cardinality(v_doomed) > 0 THEN
    v_fixed := v_fixed + summary_jobs_settle_dependents(v_doomed);
  END IF;
  RETURN v_fixed;
END $$;
