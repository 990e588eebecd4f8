-- 005: the queue's hot path (claim, complete, complete-and-claim, strict or
-- fair, within the rate limits) as one function whose plans are made once per
-- database connection.
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
-- claim picks its ids first and the update reaches them by primary key. The
-- fair pick is the exception, planned per call (EXECUTE, below).
--
-- jit = off: the planner's estimates for the fair claim's per-client scans are
-- high enough to trigger JIT compilation, which cost ~300 ms a claim.
--
-- #variable_conflict use_column: an OUT column such as id never shadows a
-- table column inside these statements.

-- Completes the jobs in p_ids whose lease token (p_tokens) still matches, then
-- leases up to p_limit runnable jobs to p_owner: in strict priority order
-- (highest priority, then oldest), or with p_fair, fairly across clients and
-- within the rate limits (below). One call, one commit: completing first frees
-- the completed jobs' slots under max_running. Returns one row per claimed job;
-- the ids completed, and those of them other jobs depend on, ride on the first
-- row only (a single row of NULL job columns when nothing was claimed), so they
-- are not sent once per job.
--
-- The fair order is a weighted round-robin across clients, priority order
-- within each. `active` walks the distinct client_ids of
-- summary_jobs_client_runnable (a skip scan: one index probe per client with a
-- backlog); each client offers the head of its own queue; the k-th job of a
-- client with weight w ranks at k/w, so a client with 100,000 queued jobs and
-- one with 10 alternate. Every row offered is locked (a WAL record each), so a
-- client offers no more than twice its weighted share of the batch (slack for
-- clients short of jobs), and never more than its rate-limit allowance.
--
-- Rate limits (table rate_limits, migration 003): when any exist, the claim
-- locks all their rows first, so concurrent claimers take turns and none can
-- overshoot a limit; each limit's allowance is what its window and its
-- max_running leave. Clients at their limit offer nothing, job types at their
-- limit are left out, job types with an allowance are cut to it, and each
-- window counts the jobs this claim started.
CREATE FUNCTION summary_jobs_complete_and_claim(
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
  -- Allowances under the rate limits: clients (0 for one at its limit), job
  -- types at their limit, job types with an allowance.
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
      FROM (
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
      WHERE a.allowance IS NOT NULL;
    END IF;

    -- Planned on each call (EXECUTE), unlike the rest: a generic plan cannot know
    -- how many rows each client's scan will take, and plans it as a sort of the
    -- client's whole backlog (150 ms against 2 ms for 100 jobs over 10 clients).
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
        SELECT a.client_id, coalesce(c.weight, 1) AS weight, cc.cap
        FROM active a
        LEFT JOIN clients c ON c.id = a.client_id
        LEFT JOIN unnest($1, $2) AS cc(client_key, cap) ON cc.client_key = a.client_id::text
        WHERE a.client_id IS NOT NULL AND coalesce(cc.cap, 1) > 0
      ), offered AS (
        SELECT o.*, w.weight,
               row_number() OVER (PARTITION BY o.client_id ORDER BY o.priority DESC, o.run_at, o.id) AS rn
        FROM weighted w
        CROSS JOIN (SELECT sum(weight) AS total FROM weighted) t
        CROSS JOIN LATERAL (
          SELECT s.id, s.client_id, s.job_type, s.priority, s.run_at FROM summary_jobs s
          WHERE s.client_id = w.client_id AND s.status = 'queued' AND s.pending_dependencies = 0
            AND s.run_at <= now() AND s.job_type <> ALL ($3)
          ORDER BY s.priority DESC, s.run_at, s.id
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

    -- Count what this claim starts against the windows of per-interval limits.
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

  -- Nothing to lease (a completion only, or an empty queue) skips the UPDATE,
  -- whose start-up alone (eight indexes opened) costs more than this row.
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
    SELECT CASE WHEN row_number() OVER () = 1 THEN v_done END, CASE WHEN row_number() OVER () = 1 THEN v_parents END,
           c.id, c.client_id, c.job_type, c.upload_id, c.payload, c.priority, c.run_at, c.attempts, c.max_attempts,
           c.lease_owner, c.lease_token, c.lease_expires_at
    FROM claimed c;
    -- This transaction holds the picked rows' locks, so all of them are leased.
    IF FOUND THEN
      RETURN;
    END IF;
  END IF;
  -- Nothing leased: the completed ids still go back, on a row of NULL job columns.
  RETURN QUERY SELECT v_done, v_parents, NULL::uuid, NULL::uuid, NULL::text, NULL::uuid, NULL::jsonb,
                      NULL::smallint, NULL::timestamptz, NULL::integer, NULL::integer, NULL::text, NULL::uuid,
                      NULL::timestamptz;
END $$;
