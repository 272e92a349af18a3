-- geopush schema v1. Times are float epoch seconds (double precision), as in the core,
-- so a value read back is the value written, bit for bit.
-- Every table is keyed by tenant first: no query can reach another tenant's rows, and
-- the whole state partitions by (tenant, user) or (tenant, venue) (DESIGN.md, scale-out).

CREATE TABLE tenants (
    tenant_id       text PRIMARY KEY,
    name            text NOT NULL DEFAULT '',
    created_at      double precision NOT NULL,
    catalog_version bigint NOT NULL DEFAULT 0,
    policy          jsonb              -- PolicyRecord; NULL = defaults
);

CREATE TABLE api_keys (
    key_hash   text PRIMARY KEY,       -- sha256 hex of the secret; the secret is never stored
    tenant_id  text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    key_id     text NOT NULL,
    role       text NOT NULL CHECK (role IN ('admin', 'manager', 'sdk')),
    name       text NOT NULL DEFAULT '',
    created_at double precision NOT NULL,
    revoked    boolean NOT NULL DEFAULT false,
    UNIQUE (tenant_id, key_id)
);

CREATE TABLE venues (
    tenant_id  text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    venue_id   text NOT NULL,
    feature    jsonb NOT NULL,         -- the GeoJSON Feature (venues.venue_to_feature)
    kind       text NOT NULL,
    tags       text[] NOT NULL,
    min_lng    double precision NOT NULL,
    min_lat    double precision NOT NULL,
    max_lng    double precision NOT NULL,
    max_lat    double precision NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (tenant_id, venue_id)
);
CREATE INDEX venues_kind ON venues (tenant_id, kind);
CREATE INDEX venues_tags ON venues USING gin (tags);

CREATE TABLE campaigns (
    tenant_id   text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    campaign_id text NOT NULL,
    status      text NOT NULL,
    body        jsonb NOT NULL,        -- Campaign.model_dump(mode="json")
    updated_at  double precision NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id)
);

CREATE TABLE profiles (
    tenant_id  text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    user_id    text NOT NULL,
    body       jsonb NOT NULL,         -- Profile.model_dump(mode="json")
    updated_at double precision NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- The hot path below has no foreign keys: the tenant is checked once per batch (its
-- core is loaded first), not once per row.

CREATE TABLE presence (
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    record     jsonb NOT NULL,         -- triggers.presence_records.UserRecord.data
    next_due_s double precision,       -- earliest timer; NULL when no visit is open
    updated_at double precision NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX presence_due ON presence (tenant_id, next_due_s) WHERE next_due_s IS NOT NULL;

CREATE TABLE pings (
    tenant_id   text NOT NULL,
    user_id     text NOT NULL,
    ts          double precision NOT NULL,
    lat         double precision NOT NULL,
    lng         double precision NOT NULL,
    accuracy_m  double precision,
    speed_mps   double precision,
    heading_deg double precision,
    mock        boolean NOT NULL,
    received_at double precision NOT NULL
);
CREATE INDEX pings_user ON pings (tenant_id, user_id, ts);

CREATE TABLE events (
    tenant_id   text NOT NULL,
    event_key   text NOT NULL,
    user_id     text NOT NULL,
    venue_id    text NOT NULL,
    kind        text NOT NULL,
    at          double precision NOT NULL,
    visit_id    text NOT NULL,
    dwell_s     double precision,
    confidence  text NOT NULL,
    reason      text,
    stale       boolean NOT NULL,
    recorded_at double precision NOT NULL,
    PRIMARY KEY (tenant_id, event_key)
);
CREATE INDEX events_user ON events (tenant_id, user_id, at);

CREATE TABLE decisions (
    tenant_id    text NOT NULL,
    decision_key text NOT NULL,
    user_id      text NOT NULL,
    decided_at   double precision NOT NULL,
    at           double precision NOT NULL,
    body         jsonb NOT NULL,       -- Decision.model_dump(mode="json")
    PRIMARY KEY (tenant_id, decision_key)
);
CREATE INDEX decisions_user ON decisions (tenant_id, user_id, decided_at DESC);

CREATE TABLE ledger (
    tenant_id   text NOT NULL,
    entry_key   text NOT NULL,         -- a sent push: its delivery's idempotency key
    user_id     text NOT NULL,
    campaign_id text NOT NULL,
    venue_id    text NOT NULL,
    variant_id  text NOT NULL,
    at          double precision NOT NULL,
    channel     text,
    control     boolean NOT NULL,
    seq         bigserial,             -- recording order, for ties in `at`
    PRIMARY KEY (tenant_id, entry_key)
);
CREATE INDEX ledger_user ON ledger (tenant_id, user_id, at);

CREATE TABLE user_streaks (
    tenant_id      text NOT NULL,
    user_id        text NOT NULL,
    ignored_streak integer NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE deliveries (
    tenant_id       text NOT NULL,
    delivery_id     text NOT NULL,
    idempotency_key text NOT NULL,
    user_id         text NOT NULL,
    campaign_id     text NOT NULL,
    variant_id      text NOT NULL,
    venue_id        text NOT NULL,
    visit_id        text NOT NULL,
    event           text NOT NULL,
    channel         text NOT NULL,
    title           text NOT NULL,
    body            text NOT NULL,
    locale          text,
    created_at      double precision NOT NULL,
    expires_at      double precision NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at double precision,
    last_error      text,
    feedback        text[] NOT NULL DEFAULT '{}',
    updated_at      double precision,
    PRIMARY KEY (tenant_id, delivery_id),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX deliveries_user ON deliveries (tenant_id, user_id, created_at);
CREATE INDEX deliveries_pending ON deliveries (status, next_attempt_at)
    WHERE status IN ('pending', 'failed');

-- Per-user batch locks, taken in the order given (the caller sorts the keys), so that
-- two batches sharing users always lock them in one order and cannot deadlock.
CREATE FUNCTION geopush_lock_users(keys bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE k bigint;
BEGIN
    FOREACH k IN ARRAY keys LOOP
        PERFORM pg_advisory_xact_lock(k);
    END LOOP;
END $$;

-- The timer loop's claim: the keys whose lock was free (SKIP LOCKED for advisory locks).
CREATE FUNCTION geopush_try_lock_users(keys bigint[]) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE k bigint; got bigint[] := '{}';
BEGIN
    FOREACH k IN ARRAY keys LOOP
        IF pg_try_advisory_xact_lock(k) THEN
            got := got || k;
        END IF;
    END LOOP;
    RETURN got;
END $$;
