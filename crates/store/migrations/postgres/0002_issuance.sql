-- Local certificate authorities: one row per CA certificate an issuer signs with (a root
-- generated on first use, an imported sub-CA, or an intermediate created under either).
CREATE TABLE certificate_authorities (
    id               TEXT PRIMARY KEY,
    issuer_id        TEXT NOT NULL REFERENCES issuers (id) ON DELETE RESTRICT,
    parent_ca_id     TEXT REFERENCES certificate_authorities (id) ON DELETE RESTRICT,
    name             TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'active',
    source           TEXT NOT NULL,
    cert_pem         TEXT NOT NULL,
    chain_pem        TEXT NOT NULL DEFAULT '',
    sealed_key       BYTEA NOT NULL,
    subject          TEXT NOT NULL,
    serial_number    TEXT NOT NULL,
    key_algorithm    TEXT NOT NULL,
    path_len         BIGINT,
    name_constraints TEXT NOT NULL DEFAULT '{}',
    not_before       BIGINT NOT NULL,
    not_after        BIGINT NOT NULL,
    -- Bumped by every revocation so every replica notices within a poll and drops its caches.
    revocation_generation BIGINT NOT NULL DEFAULT 0,
    crl_number       BIGINT NOT NULL DEFAULT 0,
    responder_cert_pem   TEXT,
    responder_sealed_key BYTEA,
    responder_not_after  BIGINT,
    retired_at       BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX ca_issuer_idx ON certificate_authorities (issuer_id, created_at, id);
CREATE INDEX ca_parent_idx ON certificate_authorities (parent_ca_id);

CREATE TABLE certificate_revocations (
    id             TEXT PRIMARY KEY,
    certificate_id TEXT REFERENCES managed_certificates (id) ON DELETE SET NULL,
    issuer_id      TEXT NOT NULL,
    ca_id          TEXT NOT NULL REFERENCES certificate_authorities (id) ON DELETE RESTRICT,
    serial_number  TEXT NOT NULL,
    reason         TEXT NOT NULL,
    revoked_by     TEXT NOT NULL,
    revoked_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    UNIQUE (ca_id, serial_number)
);
CREATE INDEX revocations_cert_idx ON certificate_revocations (certificate_id);

ALTER TABLE certificate_versions ADD COLUMN issuer_ca_id TEXT REFERENCES certificate_authorities (id);
ALTER TABLE certificate_versions ADD COLUMN sealed_private_key BYTEA;
CREATE INDEX versions_ca_serial_idx ON certificate_versions (issuer_ca_id, serial_number);

-- A Running job belongs to the replica that claimed it until the lease runs out.
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
CREATE INDEX certs_due_idx ON managed_certificates (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX jobs_open_cert_idx ON jobs (certificate_id, status);
-- At most one unfinished issuance per certificate, whichever replica or request opens it.
CREATE UNIQUE INDEX jobs_one_open_issuance ON jobs (certificate_id)
    WHERE type IN ('Issuance', 'Renewal') AND status IN ('Pending', 'AwaitingCSR', 'AwaitingApproval', 'Running');
