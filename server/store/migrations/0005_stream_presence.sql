-- geopush schema v5: which users have a live in-app stream open, on which node, so that
-- any node's dispatcher picks the inbox over a push while the app is open anywhere.
-- Each node writes its own rows (node_id: a random id per running app) and extends
-- expires_at every presence_refresh_s; a row counts while expires_at > now(), by the
-- database's clock, so a node that died without a word stops counting after 3 refreshes.
-- Live nodes delete rows long expired. Nothing else refers to these rows.
CREATE TABLE stream_presence (
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    node_id    text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, node_id, user_id)
);
-- The dispatcher's question: any live row for these users of this tenant, whatever node.
CREATE INDEX stream_presence_user ON stream_presence (tenant_id, user_id, expires_at);
