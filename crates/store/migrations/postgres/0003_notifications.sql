-- Notification channels managed through the API (channels declared by environment variables
-- live in the configuration, not here). Secrets inside the config are sealed.
CREATE TABLE notification_channels (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL,
    config        TEXT NOT NULL DEFAULT '{}',
    sealed_secret BYTEA,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- The notification outbox: rows are written in the transaction of the change that causes them
-- and delivered by a worker. dedup_key makes an alert unique per (certificate, event,
-- threshold, version, channel) across restarts and replicas.
CREATE TABLE notifications (
    id             TEXT PRIMARY KEY,
    type           TEXT NOT NULL,
    channel        TEXT NOT NULL,
    recipient      TEXT NOT NULL DEFAULT '',
    certificate_id TEXT REFERENCES managed_certificates (id) ON DELETE SET NULL,
    subject        TEXT NOT NULL DEFAULT '',
    message        TEXT NOT NULL DEFAULT '',
    payload        TEXT NOT NULL DEFAULT '{}',
    severity       TEXT NOT NULL DEFAULT 'informational',
    status         TEXT NOT NULL DEFAULT 'pending',
    retry_count    BIGINT NOT NULL DEFAULT 0,
    next_retry_at  BIGINT,
    last_error     TEXT,
    dedup_key      TEXT UNIQUE,
    lease_until    BIGINT,
    sent_at        BIGINT,
    read_at        BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX notifications_created_idx ON notifications (created_at, id);
CREATE INDEX notifications_status_idx ON notifications (status, created_at, id);
CREATE INDEX notifications_cert_idx ON notifications (certificate_id, created_at, id);
-- The retry sweep's index (PRODUCT.md §4).
CREATE INDEX notifications_retry_idx ON notifications (next_retry_at) WHERE status = 'failed' AND next_retry_at IS NOT NULL;
CREATE INDEX notifications_pending_idx ON notifications (created_at) WHERE status = 'pending';
