-- geopush schema v6: API keys' rate-limit token buckets, shared by every node.
-- A node takes a few tokens at a time (geopush_take_rate_tokens) and spends them from memory,
-- so a key gets its rate across the cluster, not once per node, at one round trip per
-- lease. Times are the database's clock (epoch seconds), the one clock all nodes share.
-- A bucket idle for burst / rate seconds is full again, the same as no row: idle rows
-- are deleted by prune_rate_buckets. Nothing refers to these rows.
CREATE TABLE rate_buckets (
    key_id     text PRIMARY KEY,
    tokens     double precision NOT NULL,
    updated_at double precision NOT NULL
);
CREATE INDEX rate_buckets_idle ON rate_buckets (updated_at);

-- Refill the key's bucket to now (at most p_burst), take up to p_want whole tokens, and
-- report what was granted and what is left. One row lock per key: concurrent takers
-- from any node queue on it, so together they never get more than the bucket holds.
CREATE FUNCTION geopush_take_rate_tokens(
    p_key_id text, p_per_s double precision, p_burst double precision, p_want integer,
    OUT granted integer, OUT remaining double precision
) LANGUAGE plpgsql AS $$
DECLARE
    v_now double precision := extract(epoch FROM clock_timestamp());
    v_tokens double precision;
    v_at double precision;
BEGIN
    INSERT INTO rate_buckets (key_id, tokens, updated_at) VALUES (p_key_id, p_burst, v_now)
    ON CONFLICT (key_id) DO NOTHING;
    SELECT b.tokens, b.updated_at INTO v_tokens, v_at
    FROM rate_buckets b WHERE b.key_id = p_key_id FOR UPDATE;
    v_tokens := least(p_burst, v_tokens + greatest(0, v_now - v_at) * p_per_s);
    granted := greatest(0, least(p_want, floor(v_tokens)::integer));
    remaining := v_tokens - granted;
    UPDATE rate_buckets SET tokens = remaining, updated_at = greatest(v_at, v_now)
    WHERE key_id = p_key_id;
END;
$$;
