-- Learned models (server/models.py): one row per training run and kind, the model file
-- as bytes, its offline evaluation against the baselines, and whether it is the one
-- served. At most one promoted row per tenant and kind.
CREATE TABLE models (
    tenant_id  text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('interests', 'sendtime')),
    version    integer NOT NULL,
    created_at double precision NOT NULL,
    blob       bytea NOT NULL,
    evaluation jsonb NOT NULL,
    promoted   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, kind, version)
);
CREATE UNIQUE INDEX models_promoted ON models (tenant_id, kind) WHERE promoted;

-- Training reads a tenant's behaviour events in (ts, key) order.
CREATE INDEX IF NOT EXISTS behaviour_events_ts ON behaviour_events (tenant_id, ts, event_key);
