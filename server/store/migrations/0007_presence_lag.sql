-- geopush schema v7: each user's clock lag (triggers.presence_state.PresenceState.lag_s).
-- A user uploading history (an offline buffer emptied an hour late) runs their timers
-- behind the wall clock by how late their latest ping arrived; 0 for a live user.
-- next_due_s already holds the wall time a user's earliest timer falls due (its due on
-- the user's clock plus the lag), so due_users and its index are unchanged. Rows written
-- before this migration belong to users who were all on the wall clock: lag 0.

ALTER TABLE presence ADD COLUMN lag_s double precision NOT NULL DEFAULT 0;

-- The batch's first statement (migration 0003) reads the lag with the other columns.
DROP FUNCTION geopush_lock_load_presence(text, text[], boolean);

CREATE FUNCTION geopush_lock_load_presence(
    tenant text, users text[], skip_locked boolean,
    OUT tenant_known boolean, OUT locked text[], OUT user_ids text[],
    OUT last_ts double precision[], OUT anchor_ts double precision[],
    OUT anchor_lat double precision[], OUT anchor_lng double precision[],
    OUT reject_streak smallint[], OUT open text[], OUT lag_s double precision[])
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
           array_agg(p.open::text), array_agg(p.lag_s)
      INTO user_ids, last_ts, anchor_ts, anchor_lat, anchor_lng, reject_streak, open, lag_s
      FROM unnest(coalesce(locked, users)) AS u(user_id)
      JOIN presence p ON p.tenant_id = tenant AND p.user_id = u.user_id;
END $$;
