-- geopush schema v3: presence as typed columns instead of one JSONB record per user.
-- A batch loads and saves a thousand users at a time as arrays (one statement each way,
-- triggers.presence_subset.to_columns / from_columns); only the few users with an open
-- visit or an entry candidate carry JSON.

ALTER TABLE presence
    ADD COLUMN last_ts       double precision,  -- may be -Infinity / NaN (no accepted ping)
    ADD COLUMN anchor_ts     double precision,
    ADD COLUMN anchor_lat    double precision,
    ADD COLUMN anchor_lng    double precision,
    ADD COLUMN reject_streak smallint,
    ADD COLUMN open          jsonb;             -- [visits, candidates]; NULL when both empty

-- The old records (triggers/presence_records.py, version 1) hold the floats as JSON
-- numbers or as the strings 'inf' / '-inf' / 'nan', all of which float8 input reads;
-- their visit and candidate rows already have the layout of PresenceColumns.open.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM presence WHERE record->>'version' IS DISTINCT FROM '1') THEN
        RAISE EXCEPTION 'presence records of a version other than 1: convert them first';
    END IF;
END $$;

UPDATE presence SET
    last_ts       = (record->>'last_ts')::double precision,
    anchor_ts     = (record->>'anchor_ts')::double precision,
    anchor_lat    = (record->>'anchor_lat')::double precision,
    anchor_lng    = (record->>'anchor_lng')::double precision,
    reject_streak = (record->>'reject_streak')::smallint,
    open          = CASE
        WHEN jsonb_array_length(record->'visits') = 0
             AND jsonb_array_length(record->'candidates') = 0 THEN NULL
        ELSE jsonb_build_array(record->'visits', record->'candidates')
    END;

ALTER TABLE presence
    ALTER COLUMN last_ts SET NOT NULL,
    ALTER COLUMN anchor_ts SET NOT NULL,
    ALTER COLUMN anchor_lat SET NOT NULL,
    ALTER COLUMN anchor_lng SET NOT NULL,
    ALTER COLUMN reject_streak SET NOT NULL,
    DROP COLUMN record;

-- A batch rewrites every row it loaded: leave room on each page so that most of those
-- updates are HOT (no index entry; next_due_s changes only for users with open visits).
ALTER TABLE presence SET (fillfactor = 80);

-- Pings: one row per (tenant, user, ts), as the batch code has always kept them (a
-- retried batch, or a ping given twice, is stored once). Unique, so that a batch inserts
-- its pings in one statement with ON CONFLICT DO NOTHING instead of reading the stored
-- ones first; the index is the one user lookups already had.
DELETE FROM pings a USING pings b
 WHERE a.tenant_id = b.tenant_id AND a.user_id = b.user_id AND a.ts = b.ts
   AND a.ctid > b.ctid;
DROP INDEX pings_user;
CREATE UNIQUE INDEX pings_user ON pings (tenant_id, user_id, ts);

-- Batch locks move into SQL: the key of (tenant, user) is computed by the server (a
-- thousand SHA-256 in Python cost a millisecond per batch), and taking them is one
-- set-based statement instead of a PL/pgSQL loop. hashtextextended is the stable 64-bit
-- hash of hash partitioning; a collision only makes two users share a lock.
DROP FUNCTION geopush_lock_users(bigint[]);
DROP FUNCTION geopush_try_lock_users(bigint[]);

CREATE FUNCTION geopush_lock_key(tenant text, user_id text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashtextextended(tenant || E'\x1f' || user_id, 0) $$;

-- A batch's first statement: lock its users, then read their presence as arrays (one
-- row; NULL arrays when none has presence).
-- - Blocking (skip_locked false): every key, in ascending order, so that two batches
--   sharing users take their locks in one order and cannot deadlock (unnest yields the
--   sorted array in order). ``locked`` is NULL: all of ``users``.
-- - skip_locked: only the users whose lock is free (the timer loop's claim, SKIP LOCKED
--   for advisory locks); a try never waits, so its order does not matter. ``locked``
--   names them.
-- The read joins the array rather than testing user_id = ANY(array): on a small table
-- the planner prefers a filter, which compares each row with every element (a plan
-- cached for a parameter array believes it has 10), quadratic in the batch size.
-- VOLATILE, so each statement inside takes a fresh snapshot: the SELECT sees every batch
-- that committed while we waited for a lock (a single SQL statement could not: its
-- snapshot predates the wait).
CREATE FUNCTION geopush_lock_load_presence(
    tenant text, users text[], skip_locked boolean,
    OUT tenant_known boolean, OUT locked text[], OUT user_ids text[],
    OUT last_ts double precision[], OUT anchor_ts double precision[],
    OUT anchor_lat double precision[], OUT anchor_lng double precision[],
    OUT reject_streak smallint[], OUT open text[])
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF skip_locked THEN
        locked := ARRAY(SELECT u FROM unnest(users) AS u
                         WHERE pg_try_advisory_xact_lock(geopush_lock_key(tenant, u)));
    ELSE
        PERFORM pg_advisory_xact_lock(k)
           FROM unnest(ARRAY(SELECT DISTINCT geopush_lock_key(tenant, u)
                               FROM unnest(users) AS u ORDER BY 1)) AS k;
    END IF;
    tenant_known := EXISTS (SELECT 1 FROM tenants t WHERE t.tenant_id = tenant);
    SELECT array_agg(p.user_id), array_agg(p.last_ts), array_agg(p.anchor_ts),
           array_agg(p.anchor_lat), array_agg(p.anchor_lng), array_agg(p.reject_streak),
           array_agg(p.open::text)
      INTO user_ids, last_ts, anchor_ts, anchor_lat, anchor_lng, reject_streak, open
      FROM unnest(coalesce(locked, users)) AS u(user_id)
      JOIN presence p ON p.tenant_id = tenant AND p.user_id = u.user_id;
END $$;
