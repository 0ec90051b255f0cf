-- certctl schema. Times are BIGINT microseconds since the Unix epoch (UTC); JSON is TEXT.
-- The PostgreSQL migration carries the same tables; only binary types and triggers differ.

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE owners (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL,
    team_id    TEXT NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX owners_team_idx ON owners (team_id, created_at, id);
CREATE INDEX owners_created_idx ON owners (created_at, id);

CREATE TABLE issuers (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    type             TEXT NOT NULL,
    config           TEXT NOT NULL DEFAULT '{}',
    encrypted_config BLOB,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    test_status      TEXT NOT NULL DEFAULT 'untested',
    last_tested_at   BIGINT,
    source           TEXT NOT NULL DEFAULT 'database',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX issuers_created_idx ON issuers (created_at, id);

CREATE TABLE agents (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    hostname          TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT 'Offline',
    last_heartbeat_at BIGINT,
    registered_at     BIGINT NOT NULL,
    os                TEXT NOT NULL DEFAULT '',
    architecture      TEXT NOT NULL DEFAULT '',
    ip_address        TEXT NOT NULL DEFAULT '',
    version           TEXT NOT NULL DEFAULT '',
    credential_hash   TEXT UNIQUE,
    retired_at        BIGINT,
    retired_reason    TEXT
);
CREATE INDEX agents_registered_idx ON agents (registered_at, id);

CREATE TABLE deployment_targets (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    type             TEXT NOT NULL,
    agent_id         TEXT NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
    config           TEXT NOT NULL DEFAULT '{}',
    encrypted_config BLOB,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    test_status      TEXT NOT NULL DEFAULT 'untested',
    last_tested_at   BIGINT,
    retired_at       BIGINT,
    retired_reason   TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (agent_id, name)
);
CREATE INDEX targets_created_idx ON deployment_targets (created_at, id);

CREATE TABLE certificate_profiles (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    description            TEXT NOT NULL DEFAULT '',
    allowed_key_algorithms TEXT NOT NULL DEFAULT '[]',
    max_ttl_seconds        BIGINT NOT NULL DEFAULT 0,
    allowed_ekus           TEXT NOT NULL DEFAULT '["serverAuth"]',
    required_san_patterns  TEXT NOT NULL DEFAULT '[]',
    spiffe_uri_pattern     TEXT NOT NULL DEFAULT '',
    allow_short_lived      BOOLEAN NOT NULL DEFAULT FALSE,
    must_staple            BOOLEAN NOT NULL DEFAULT FALSE,
    requires_approval      BOOLEAN NOT NULL DEFAULT FALSE,
    key_mode               TEXT,
    acme_auth_mode         TEXT NOT NULL DEFAULT 'trust_authenticated',
    enabled                BOOLEAN NOT NULL DEFAULT TRUE,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX profiles_created_idx ON certificate_profiles (created_at, id);

CREATE TABLE renewal_policies (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    renewal_window_days    BIGINT NOT NULL DEFAULT 30,
    auto_renew             BOOLEAN NOT NULL DEFAULT TRUE,
    max_retries            BIGINT NOT NULL DEFAULT 3,
    retry_interval_seconds BIGINT NOT NULL DEFAULT 3600,
    alert_thresholds_days  TEXT NOT NULL DEFAULT '[30,14,7,0]',
    alert_channels         TEXT NOT NULL DEFAULT '{}',
    alert_severity_map     TEXT NOT NULL DEFAULT '{}',
    certificate_profile_id TEXT REFERENCES certificate_profiles (id) ON DELETE RESTRICT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX renewal_policies_created_idx ON renewal_policies (created_at, id);

CREATE TABLE managed_certificates (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    common_name            TEXT NOT NULL,
    sans                   TEXT NOT NULL DEFAULT '[]',
    environment            TEXT NOT NULL DEFAULT '',
    owner_id               TEXT NOT NULL REFERENCES owners (id) ON DELETE RESTRICT,
    team_id                TEXT NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
    issuer_id              TEXT NOT NULL REFERENCES issuers (id) ON DELETE RESTRICT,
    renewal_policy_id      TEXT NOT NULL REFERENCES renewal_policies (id) ON DELETE RESTRICT,
    certificate_profile_id TEXT REFERENCES certificate_profiles (id) ON DELETE RESTRICT,
    status                 TEXT NOT NULL DEFAULT 'Pending',
    expires_at             BIGINT,
    tags                   TEXT NOT NULL DEFAULT '{}',
    last_renewal_at        BIGINT,
    last_deployment_at     BIGINT,
    revoked_at             BIGINT,
    revocation_reason      TEXT,
    source                 TEXT NOT NULL DEFAULT 'API',
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
-- Every list filter has an index whose tail is the default keyset order (created_at, id).
CREATE INDEX certs_created_idx ON managed_certificates (created_at, id);
CREATE INDEX certs_updated_idx ON managed_certificates (updated_at, id);
CREATE INDEX certs_status_idx ON managed_certificates (status, created_at, id);
CREATE INDEX certs_owner_idx ON managed_certificates (owner_id, status, created_at, id);
CREATE INDEX certs_team_idx ON managed_certificates (team_id, created_at, id);
CREATE INDEX certs_issuer_idx ON managed_certificates (issuer_id, created_at, id);
CREATE INDEX certs_policy_idx ON managed_certificates (renewal_policy_id);
CREATE INDEX certs_profile_idx ON managed_certificates (certificate_profile_id, created_at, id);
CREATE INDEX certs_environment_idx ON managed_certificates (environment, created_at, id);
CREATE INDEX certs_source_idx ON managed_certificates (source, created_at, id);
CREATE INDEX certs_expires_idx ON managed_certificates (COALESCE(expires_at, 9223372036854775807), id);
CREATE INDEX certs_name_idx ON managed_certificates (common_name, id);

CREATE TABLE certificate_versions (
    id                 TEXT PRIMARY KEY,
    certificate_id     TEXT NOT NULL REFERENCES managed_certificates (id) ON DELETE CASCADE,
    serial_number      TEXT NOT NULL,
    not_before         BIGINT NOT NULL,
    not_after          BIGINT NOT NULL,
    fingerprint_sha256 TEXT NOT NULL UNIQUE,
    pem_chain          TEXT NOT NULL,
    csr_pem            TEXT,
    key_algorithm      TEXT NOT NULL DEFAULT '',
    key_size           BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL
);
CREATE INDEX versions_cert_idx ON certificate_versions (certificate_id, created_at, id);
CREATE INDEX versions_serial_idx ON certificate_versions (serial_number);

CREATE TABLE certificate_target_mappings (
    certificate_id TEXT NOT NULL REFERENCES managed_certificates (id) ON DELETE CASCADE,
    target_id      TEXT NOT NULL REFERENCES deployment_targets (id) ON DELETE RESTRICT,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (certificate_id, target_id)
);
CREATE INDEX mappings_target_idx ON certificate_target_mappings (target_id, certificate_id);

CREATE TABLE jobs (
    id                       TEXT PRIMARY KEY,
    type                     TEXT NOT NULL,
    certificate_id           TEXT NOT NULL REFERENCES managed_certificates (id) ON DELETE CASCADE,
    target_id                TEXT REFERENCES deployment_targets (id) ON DELETE SET NULL,
    agent_id                 TEXT REFERENCES agents (id) ON DELETE SET NULL,
    status                   TEXT NOT NULL,
    attempts                 BIGINT NOT NULL DEFAULT 0,
    max_attempts             BIGINT NOT NULL DEFAULT 3,
    last_error               TEXT,
    scheduled_at             BIGINT NOT NULL,
    started_at               BIGINT,
    completed_at             BIGINT,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    verification_status      TEXT NOT NULL DEFAULT 'pending',
    verified_at              BIGINT,
    verification_error       TEXT,
    verification_fingerprint TEXT
);
CREATE INDEX jobs_created_idx ON jobs (created_at, id);
CREATE INDEX jobs_status_idx ON jobs (status, scheduled_at, id);
CREATE INDEX jobs_cert_idx ON jobs (certificate_id, created_at, id);
CREATE INDEX jobs_agent_idx ON jobs (agent_id, status);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Append-only, hash-chained audit trail. `seq` is assigned by the writer as the previous
-- row's seq + 1 while it holds the chain lock, so the chain order is the seq order and a gap
-- is itself evidence of tampering.
CREATE TABLE audit_events (
    seq           BIGINT PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    ts            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    actor_type    TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    details       TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_ts_idx ON audit_events (ts, seq);
CREATE INDEX audit_actor_idx ON audit_events (actor, seq);
CREATE INDEX audit_action_idx ON audit_events (action, seq);
CREATE INDEX audit_resource_idx ON audit_events (resource_type, resource_id, seq);
CREATE INDEX audit_resource_id_idx ON audit_events (resource_id, seq);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
