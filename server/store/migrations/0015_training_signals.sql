-- Training reads visits and push feedback besides behaviour events (server/models.py).
-- feedback_times: kind -> when that feedback was recorded (rows from before this
-- migration have none; training then takes the push's creation time).
ALTER TABLE deliveries ADD COLUMN feedback_times jsonb NOT NULL DEFAULT '{}';

-- Training pages a tenant's visits (ENTER events) and engaged pushes in time order.
CREATE INDEX IF NOT EXISTS events_enter_at ON events (tenant_id, at, event_key COLLATE "C")
    WHERE kind = 'enter';
CREATE INDEX IF NOT EXISTS deliveries_engaged_at ON deliveries (tenant_id, created_at)
    WHERE feedback && ARRAY['opened', 'clicked']::text[];
