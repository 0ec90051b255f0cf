-- ACME policy: external account binding, database-held rate limits and incident renewal.

-- A profile whose directory requires an external account binding (RFC 8555 §7.3.4) on new-account.
ALTER TABLE acme_bindings ADD COLUMN external_account_required BOOLEAN NOT NULL DEFAULT FALSE;

-- EAB keys: an admin hands the kid and the HMAC key to a client out of band. The key is sealed
-- with the server's encryption key. A key binds one account, once (account_id set on first use);
-- profile_id, when set, restricts it to that profile's directory.
CREATE TABLE acme_eab_keys (
    id          TEXT PRIMARY KEY,
    profile_id  TEXT REFERENCES certificate_profiles (id) ON DELETE CASCADE,
    sealed_key  BYTEA NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    account_id  TEXT,
    used_at     BIGINT,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Fixed-window counters, one row per (bucket, window), shared by every replica. A check is one
-- upsert that returns the window's count; rows past expires_at are garbage-collected.
CREATE TABLE acme_rate_limits (
    bucket       TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits         BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
CREATE INDEX acme_rate_limits_expiry_idx ON acme_rate_limits (expires_at);

-- An admin's "renew now" (RFC 9773 incident response): ARI answers this window for the
-- certificate instead of the one its renewal policy gives.
CREATE TABLE acme_renewal_overrides (
    certificate_id TEXT PRIMARY KEY REFERENCES managed_certificates (id) ON DELETE CASCADE,
    window_start   BIGINT NOT NULL,
    window_end     BIGINT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

-- Garbage collection finds expired orders by status and expiry.
CREATE INDEX acme_orders_expiry_idx ON acme_orders (status, expires_at);
