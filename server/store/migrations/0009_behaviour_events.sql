-- Behaviour events (POST /v1/events, geopush events import): one row per event, UNIQUE
-- per tenant by its idempotency key (event_id, else a hash of the event). The whole
-- event is kept as JSON; user, time, kind, item and category are columns for the
-- user's history and retention. Pruned like pings, by when they were received.
CREATE TABLE behaviour_events (
    tenant_id   text NOT NULL,
    event_key   text NOT NULL,
    user_id     text NOT NULL,
    ts          double precision NOT NULL,
    kind        text NOT NULL,
    item_id     text,
    category    text,
    body        jsonb NOT NULL,       -- BehaviourEvent.model_dump(mode="json")
    received_at double precision NOT NULL,
    PRIMARY KEY (tenant_id, event_key)
);
CREATE INDEX behaviour_events_user ON behaviour_events (tenant_id, user_id, ts);
CREATE INDEX behaviour_events_received_brin ON behaviour_events USING brin (received_at);

-- Each user's profile features (triggers.behaviour.features.UserFeatures.to_json),
-- bounded per user, folded in the transaction that stores the user's new events.
CREATE TABLE behaviour_features (
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    body       jsonb NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- A tenant's tag rules (PUT /v1/tag-rules); no row: the defaults.
CREATE TABLE tag_rules (
    tenant_id  text PRIMARY KEY REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    body       jsonb NOT NULL,
    updated_at double precision NOT NULL
);

-- Behaviour triggers waiting for their delay (or for the follow-up that cancels them):
-- one row per (campaign, triggering event), UNIQUE per tenant by key; written with the
-- event's insert, under the user's batch lock. state: pending, fired or cancelled.
CREATE TABLE behaviour_triggers (
    tenant_id   text NOT NULL,
    key         text NOT NULL,
    user_id     text NOT NULL,
    campaign_id text NOT NULL,
    due_at      double precision NOT NULL,
    state       text NOT NULL DEFAULT 'pending',
    body        jsonb NOT NULL,       -- PendingTrigger.to_json()
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX behaviour_triggers_due ON behaviour_triggers (tenant_id, due_at)
    WHERE state = 'pending';
CREATE INDEX behaviour_triggers_user ON behaviour_triggers (tenant_id, user_id)
    WHERE state = 'pending';

-- The first statement of a behaviour ingest: the users' batch locks (every key, in
-- ascending order, as geopush_lock_load_presence takes them: no deadlock with a batch
-- or an erasure), then their features, read after the locks. tenant_known: whether the
-- tenant exists; one row per user with features.
CREATE FUNCTION geopush_lock_load_features(tenant text, users text[])
RETURNS TABLE (tenant_known boolean, user_id text, body text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(k)
       FROM unnest(ARRAY(SELECT DISTINCT geopush_lock_key(tenant, u)
                           FROM unnest(users) AS u ORDER BY 1)) AS k;
    RETURN QUERY
        SELECT EXISTS (SELECT 1 FROM tenants t WHERE t.tenant_id = tenant), NULL::text,
               NULL::text
        UNION ALL
        SELECT NULL::boolean, f.user_id, f.body::text
          FROM unnest(users) AS u(user_id)
          JOIN behaviour_features f ON f.tenant_id = tenant AND f.user_id = u.user_id;
END $$;
