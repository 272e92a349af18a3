-- Raw pings are kept for a retention period (settings.ping_retention_days) and pruned
-- by the service's housekeeping in small deletes. Pings arrive in time order, so a BRIN
-- index on received_at finds the old ones for a few pages of index, where a b-tree
-- would cost every insert another index update.
CREATE INDEX pings_received_brin ON pings USING brin (received_at);
