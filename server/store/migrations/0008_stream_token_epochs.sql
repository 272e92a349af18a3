-- geopush schema v8: revocable in-app stream tokens.
-- A stream token carries the tenant's and the user's token epochs current when it was
-- minted; a token below either current epoch is revoked (refused at connect, its open
-- sockets closed). POST /v1/stream/revoke bumps the tenant's (or one user's) epoch, and
-- erasing a user bumps the user's in the erasure's transaction. The user's epoch must
-- outlive the erasure, so it is kept under the SHA-256 of the user id (user_key), not
-- the id: the erasure leaves no row naming the user.
ALTER TABLE tenants ADD COLUMN stream_epoch integer NOT NULL DEFAULT 0;

CREATE TABLE stream_token_epochs (
    tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    user_key  text NOT NULL,           -- sha256 hex of the user id
    epoch     integer NOT NULL,
    PRIMARY KEY (tenant_id, user_key)
);
