-- A user's behaviour features are written on every ingest of their events and only ever
-- read whole by the service (orjson, never queried inside): kept as text, not jsonb.
-- Measured on the bench machine, an upsert of 1,600 users' features (about 2 kB each)
-- cost PostgreSQL a third of the jsonb column's time (no parse into jsonb, smaller
-- TOAST work) — issue 16's ingest rate on PostgreSQL, BENCHMARKS.md.
ALTER TABLE behaviour_features ALTER COLUMN body TYPE text USING body::text;
