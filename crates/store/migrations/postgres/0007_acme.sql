-- The ACME server. A certctl profile serves ACME once an admin binds it to the issuer that signs
-- for it and to the owner, team and renewal policy its certificates are filed under.
CREATE TABLE acme_bindings (
    profile_id        TEXT PRIMARY KEY REFERENCES certificate_profiles (id) ON DELETE CASCADE,
    issuer_id         TEXT NOT NULL REFERENCES issuers (id) ON DELETE RESTRICT,
    owner_id          TEXT NOT NULL REFERENCES owners (id) ON DELETE RESTRICT,
    team_id           TEXT NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
    renewal_policy_id TEXT NOT NULL REFERENCES renewal_policies (id) ON DELETE RESTRICT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

-- Accounts are unique per (profile, JWK thumbprint): a key registers once per directory.
CREATE TABLE acme_accounts (
    id         TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL REFERENCES certificate_profiles (id) ON DELETE CASCADE,
    thumbprint TEXT NOT NULL,
    jwk        TEXT NOT NULL,
    status     TEXT NOT NULL,
    contact    TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (profile_id, thumbprint)
);

CREATE TABLE acme_orders (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES acme_accounts (id) ON DELETE CASCADE,
    profile_id     TEXT NOT NULL REFERENCES certificate_profiles (id) ON DELETE CASCADE,
    status         TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    identifiers    TEXT NOT NULL,
    not_before     BIGINT,
    not_after      BIGINT,
    error          TEXT,
    certificate_id TEXT REFERENCES managed_certificates (id) ON DELETE SET NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX acme_orders_account_idx ON acme_orders (account_id, created_at, id);
CREATE INDEX acme_orders_certificate_idx ON acme_orders (certificate_id);

CREATE TABLE acme_authorizations (
    id               TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES acme_orders (id) ON DELETE CASCADE,
    account_id       TEXT NOT NULL REFERENCES acme_accounts (id) ON DELETE CASCADE,
    identifier_type  TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    wildcard         BOOLEAN NOT NULL DEFAULT FALSE,
    status           TEXT NOT NULL,
    expires_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX acme_authz_order_idx ON acme_authorizations (order_id, id);

CREATE TABLE acme_challenges (
    id           TEXT PRIMARY KEY,
    authz_id     TEXT NOT NULL REFERENCES acme_authorizations (id) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    token        TEXT NOT NULL,
    status       TEXT NOT NULL,
    validated_at BIGINT,
    error        TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX acme_challenges_authz_idx ON acme_challenges (authz_id, id);

-- Nonces are sealed (authenticated, with their expiry inside) by the server key, so issuing one
-- costs no write; spending one inserts it here, and the primary key makes it single-use across
-- every replica. Rows past their expiry are purged.
CREATE TABLE acme_spent_nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX acme_spent_nonces_expiry_idx ON acme_spent_nonces (expires_at);

-- The key that authenticates nonces, sealed with the server's encryption key; one row, created
-- by whichever replica needs it first, so every replica verifies every other's nonces.
CREATE TABLE acme_nonce_key (
    id         BIGINT PRIMARY KEY,
    sealed_key BYTEA NOT NULL
);
