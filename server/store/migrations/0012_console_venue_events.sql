-- The console's live view reads a venue's recent events: by venue, then time.
CREATE INDEX IF NOT EXISTS events_venue ON events (tenant_id, venue_id, at);
