-- geopush schema v2: the outbox dispatcher, tenant channel settings, stream secrets,
-- conversions for lift, and the aggregates the stats endpoint asks for.

-- Per-tenant secrets and settings. stream_secret signs the in-app stream tokens (made on
-- first use); channels is the validated channel configuration (server/outbox/config.py),
-- NULL until an admin puts one.
ALTER TABLE tenants ADD COLUMN stream_secret text;
ALTER TABLE tenants ADD COLUMN channels jsonb;

-- Claims: a dispatcher owns a row until claimed_until; claimed_by names the claim, so a
-- dispatcher whose lease ran out (and whose row someone else took) cannot overwrite it.
-- settled: a sent offer whose TTL has passed and whose fatigue outcome (IGNORED when the
-- user never reacted) has been recorded.
ALTER TABLE deliveries ADD COLUMN claimed_until double precision;
ALTER TABLE deliveries ADD COLUMN claimed_by text;
ALTER TABLE deliveries ADD COLUMN provider_id text;
ALTER TABLE deliveries ADD COLUMN settled boolean NOT NULL DEFAULT false;

DROP INDEX deliveries_pending;
CREATE INDEX deliveries_due ON deliveries (tenant_id, (coalesce(next_attempt_at, created_at)))
    WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_unsettled ON deliveries (tenant_id, expires_at)
    WHERE status = 'sent' AND NOT settled;
CREATE INDEX deliveries_campaign ON deliveries (tenant_id, campaign_id, variant_id);
CREATE INDEX deliveries_inbox ON deliveries (tenant_id, user_id, created_at)
    WHERE channel = 'inbox' AND status = 'sent';
CREATE INDEX ledger_control ON ledger (tenant_id, campaign_id) WHERE control;

-- Conversions reported by the tenant's backend per (campaign, user), exposed or held out:
-- what lift compares (definitions in triggers/decisions/stats.py).
CREATE TABLE conversions (
    tenant_id   text NOT NULL,
    campaign_id text NOT NULL,
    user_id     text NOT NULL,
    at          double precision NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, user_id)
);
CREATE INDEX conversions_user ON conversions (tenant_id, user_id);
