-- The account certctl holds at the CA of each ACME issuer; its credentials (account URL and
-- key) are sealed with the server's key, so restarts and revocations reuse the same account.
CREATE TABLE acme_issuer_accounts (
    issuer_id          TEXT PRIMARY KEY REFERENCES issuers (id) ON DELETE CASCADE,
    directory_url      TEXT NOT NULL,
    account_url        TEXT NOT NULL,
    sealed_credentials BYTEA NOT NULL,
    created_at         BIGINT NOT NULL
);

-- The renewal window an ACME CA suggests (RFC 9773) for the current version of a certificate;
-- the renewal scan starts a renewal once renew_at has passed.
CREATE TABLE acme_renewal_windows (
    certificate_id TEXT PRIMARY KEY REFERENCES managed_certificates (id) ON DELETE CASCADE,
    serial_number  TEXT NOT NULL,
    window_start   BIGINT NOT NULL,
    window_end     BIGINT NOT NULL,
    renew_at       BIGINT NOT NULL,
    checked_at     BIGINT NOT NULL
);
CREATE INDEX acme_renewal_windows_due_idx ON acme_renewal_windows (renew_at);
