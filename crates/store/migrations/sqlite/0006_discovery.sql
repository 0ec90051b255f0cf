-- Certificates agents find on their hosts, one row per (fingerprint, agent, path); a re-report
-- moves last_seen_at. Triage moves a row from Unmanaged to Managed (claimed) or Dismissed.
CREATE TABLE discovered_certificates (
    id                     TEXT PRIMARY KEY,
    agent_id               TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    source_path            TEXT NOT NULL,
    source_format          TEXT NOT NULL DEFAULT 'PEM',
    fingerprint_sha256     TEXT NOT NULL,
    common_name            TEXT NOT NULL DEFAULT '',
    sans                   TEXT NOT NULL DEFAULT '[]',
    serial_number          TEXT NOT NULL,
    subject_dn             TEXT NOT NULL DEFAULT '',
    issuer_dn              TEXT NOT NULL DEFAULT '',
    not_before             BIGINT NOT NULL,
    not_after              BIGINT NOT NULL,
    key_algorithm          TEXT NOT NULL DEFAULT '',
    key_size               BIGINT NOT NULL DEFAULT 0,
    is_ca                  BOOLEAN NOT NULL DEFAULT FALSE,
    pem_data               TEXT NOT NULL,
    status                 TEXT NOT NULL DEFAULT 'Unmanaged',
    managed_certificate_id TEXT REFERENCES managed_certificates (id) ON DELETE SET NULL,
    first_seen_at          BIGINT NOT NULL,
    last_seen_at           BIGINT NOT NULL,
    dismissed_at           BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    UNIQUE (fingerprint_sha256, agent_id, source_path)
);
CREATE INDEX discovered_created_idx ON discovered_certificates (created_at, id);
CREATE INDEX discovered_status_idx ON discovered_certificates (status, not_after);
CREATE INDEX discovered_agent_idx ON discovered_certificates (agent_id, created_at, id);
