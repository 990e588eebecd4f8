-- 007: the fair claim locks what it takes. Each client offered (and so
-- locked: a heap write and a WAL record per row) up to twice its share of the
-- batch, so that clients short of jobs would not leave it short; the rows
-- locked but not taken were skipped by every other claimer until the commit.
-- Now each client offers its share, and only when the shares leave the batch
-- short does a second round split what is left among the clients that filled
-- theirs, by weight (limited clients and job types up to what their limits
-- still allow), before the top-up in priority order. The walk that finds
-- the clients with runnable jobs goes down the index instead of up (below).
-- And summary_jobs_record returns the claim with RETURN QUERY instead of a row
-- loop (fourteen assignments a row).
--
-- Measured with 10 clients, 4 processors, 200,000 jobs (npm run bench --
-- --only=processor): see BENCHMARKS.md.

-- The hot path of 006 (and 005), the fair claim changed as said above.
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
  v_total numeric;
  v_full_clients uuid[] := '{}';
  v_full_weights integer[] := '{}';
  v_full_rooms integer[] := '{}';
  v_full_total numeric;
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
      -- Only clients with a job runnable now share the batch: the walk from
      -- client to client skips those whose jobs are all delayed, in the same
      -- index descent that finds the next client. It walks from the last
      -- client down, each descent landing on the end of a client's range:
      -- the head, where claims take jobs, is lined with the entries of jobs
      -- already claimed until vacuum removes them, and a walk up read them all
      -- (484 against 49 buffers for 10 clients, 3,000 jobs each claimed).
      WITH RECURSIVE active(client_id) AS (
        (SELECT s.client_id FROM summary_jobs s
         WHERE s.status = 'queued' AND s.pending_dependencies = 0 AND s.run_at <= now()
         ORDER BY s.client_id DESC LIMIT 1)
        UNION ALL
        SELECT (SELECT s.client_id FROM summary_jobs s
                WHERE s.status = 'queued' AND s.pending_dependencies = 0 AND s.run_at <= now()
                  AND s.client_id < a.client_id
                ORDER BY s.client_id DESC LIMIT 1)
        FROM active a WHERE a.client_id IS NOT NULL
      ), weighted AS (
        -- The weight by primary key, one lookup per active client: a join left
        -- to the generic plan read the whole clients table on every claim.
        SELECT a.client_id, coalesce((SELECT c.weight FROM clients c WHERE c.id = a.client_id), 1) AS weight, cc.cap
        FROM active a
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
          LIMIT least(p_limit, coalesce(w.cap, p_limit), ceil(p_limit::numeric * w.weight / t.total)::integer)
          FOR UPDATE SKIP LOCKED
        ) o
      ), ranked AS (
        SELECT o.*, row_number() OVER (PARTITION BY o.job_type
                                       ORDER BY o.rn::float8 / o.weight, o.priority DESC, o.run_at, o.id) AS tn
        FROM offered o
      )
      SELECT ARRAY(
               SELECT r.id FROM ranked r
               LEFT JOIN unnest(v_type_names, v_type_caps) AS tc(job_type, cap) ON tc.job_type = r.job_type
               WHERE tc.cap IS NULL OR r.tn <= tc.cap
               ORDER BY r.rn::float8 / r.weight, r.priority DESC, r.run_at, r.id
               LIMIT p_limit),
             (SELECT sum(w.weight) FROM weighted w)
      INTO v_pick, v_total;
    ELSE
      EXECUTE $fair$
        WITH RECURSIVE active(client_id) AS (
          (SELECT s.client_id FROM summary_jobs s
           WHERE s.status = 'queued' AND s.pending_dependencies = 0 ORDER BY s.client_id DESC LIMIT 1)
          UNION ALL
          SELECT (SELECT s.client_id FROM summary_jobs s
                  WHERE s.status = 'queued' AND s.pending_dependencies = 0 AND s.client_id < a.client_id
                  ORDER BY s.client_id DESC LIMIT 1)
          FROM active a WHERE a.client_id IS NOT NULL
        ), weighted AS (
          -- Only clients with a job runnable now share the batch. The probe reads
          -- the same index range the client's offer below reads anyway.
          SELECT a.client_id, coalesce((SELECT c.weight FROM clients c WHERE c.id = a.client_id), 1) AS weight, cc.cap
          FROM active a
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
            LIMIT least($6, coalesce(w.cap, $6), ceil($6::numeric * w.weight / t.total)::integer)
            FOR UPDATE SKIP LOCKED
          ) o
        ), ranked AS (
          SELECT o.*, row_number() OVER (PARTITION BY o.job_type
                                         ORDER BY o.rn::float8 / o.weight, o.priority DESC, o.run_at, o.id) AS tn
          FROM offered o
        )
        SELECT ARRAY(
                 SELECT r.id FROM ranked r
                 LEFT JOIN unnest($4, $5) AS tc(job_type, cap) ON tc.job_type = r.job_type
                 WHERE tc.cap IS NULL OR r.tn <= tc.cap
                 ORDER BY r.rn::float8 / r.weight, r.priority DESC, r.run_at, r.id
                 LIMIT $6),
               (SELECT sum(w.weight) FROM weighted w)
      $fair$
      INTO v_pick, v_total
      USING v_client_keys, v_client_caps, v_types_blocked, v_type_names, v_type_caps, p_limit;
    END IF;

    -- The shares left the batch short (a client had fewer jobs than its
    -- share): what is left goes to the clients that filled theirs, split by
    -- weight, in the same fair order after the first round. A limited client
    -- or job type takes part up to what its limit still allows after the first
    -- round (its allowance less what that round gave it), so the counting
    -- stays exact; a job type held back takes no part. Rows this transaction
    -- locked are not skipped by SKIP LOCKED, hence the exclusion by id.
    IF cardinality(v_pick) < p_limit AND cardinality(v_pick) > 0 THEN
      SELECT coalesce(array_agg(f.client_id), '{}'), coalesce(array_agg(f.weight), '{}'),
             coalesce(array_agg(f.room), '{}'), sum(f.weight)
      INTO v_full_clients, v_full_weights, v_full_rooms, v_full_total
      FROM (SELECT p.client_id, p.n,
                   coalesce((SELECT c.weight FROM clients c WHERE c.id = p.client_id), 1) AS weight,
                   (SELECT cc.cap - p.n FROM unnest(v_client_keys, v_client_caps) AS cc(client_key, cap)
                    WHERE cc.client_key = p.client_id::text) AS room
            FROM (SELECT s.client_id, count(*)::integer AS n FROM summary_jobs s
                  WHERE s.id = ANY (v_pick) GROUP BY s.client_id) p) f
      WHERE f.n >= least(p_limit, ceil(p_limit::numeric * f.weight / v_total)) AND coalesce(f.room, 1) > 0;
      IF cardinality(v_full_clients) > 0 THEN
        v_pick := v_pick || ARRAY(
          SELECT o.id FROM (
            SELECT o.*, row_number() OVER (PARTITION BY o.job_type
                                           ORDER BY o.rn::float8 / o.weight, o.priority DESC, o.run_at, o.id) AS tn
            FROM (
              SELECT o.id, o.job_type, o.priority, o.run_at, f.weight,
                     row_number() OVER (PARTITION BY f.client_id ORDER BY o.priority DESC, o.run_at, o.id) AS rn
              FROM unnest(v_full_clients, v_full_weights, v_full_rooms) AS f(client_id, weight, room)
              CROSS JOIN LATERAL (
                SELECT s.id, s.job_type, s.priority, s.run_at FROM summary_jobs s
                WHERE s.client_id >= f.client_id AND s.client_id <= f.client_id
                  AND s.status = 'queued' AND s.pending_dependencies = 0 AND s.run_at <= now()
                  AND s.id <> ALL (v_pick) AND s.job_type <> ALL (v_types_blocked)
                ORDER BY s.client_id, s.priority DESC, s.run_at, s.id
                LIMIT least(coalesce(f.room, p_limit),
                            ceil((p_limit - cardinality(v_pick))::numeric * f.weight / v_full_total)::integer)
                FOR UPDATE SKIP LOCKED
              ) o
            ) o
          ) o
          LEFT JOIN (
            -- What each limited job type still allows after the first round.
            SELECT tc.job_type, tc.cap - coalesce(taken.n, 0) AS room
            FROM unnest(v_type_names, v_type_caps) AS tc(job_type, cap)
            LEFT JOIN (SELECT s.job_type, count(*)::integer AS n FROM summary_jobs s
                       WHERE s.id = ANY (v_pick) GROUP BY s.job_type) taken ON taken.job_type = tc.job_type
          ) t ON t.job_type = o.job_type
          WHERE t.room IS NULL OR o.tn <= t.room
          ORDER BY o.rn::float8 / o.weight, o.priority DESC, o.run_at, o.id
          LIMIT p_limit - cardinality(v_pick));
      END IF;
    END IF;

    -- Still short (few clients, limits): top it up in priority order, from jobs
    -- that no limit governs, as above.
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

-- As in 006; the claim comes back with RETURN QUERY.
CREATE OR REPLACE FUNCTION summary_jobs_record(
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
  RETURN QUERY
    SELECT CASE WHEN c.ord = 1 THEN v_recorded END, c.done_ids, c.id, c.client_id, c.job_type, c.upload_id,
           c.payload, c.priority, c.run_at, c.attempts, c.max_attempts, c.lease_owner, c.lease_token,
           c.lease_expires_at
    FROM summary_jobs_complete_and_claim(p_done_ids, p_done_tokens, p_results, p_owner, p_limit,
                                         p_lease_seconds, p_fair)
         WITH ORDINALITY AS c(done_ids, parent_ids, id, client_id, job_type, upload_id, payload, priority, run_at,
                              attempts, max_attempts, lease_owner, lease_token, lease_expires_at, ord)
    ORDER BY c.ord;
END $$;

