-- Indexes behind the dashboard statistics and the metrics snapshot: every count is an index
-- range scan over the rows it counts, never a walk of the table.

-- Expired and expiring certificates by expiry, with the status in the index so the
-- "not revoked" test needs no row lookups.
CREATE INDEX certs_expiry_status_idx ON managed_certificates (expires_at, status);
-- Online agents: heartbeat within the last minutes, among agents not retired.
CREATE INDEX agents_heartbeat_idx ON agents (last_heartbeat_at) WHERE retired_at IS NULL;
-- Job trends bucket finished jobs by completion day.
CREATE INDEX jobs_completed_idx ON jobs (completed_at, status) WHERE completed_at IS NOT NULL;
-- Issuance rate buckets certificate versions by creation day.
CREATE INDEX versions_created_idx ON certificate_versions (created_at);
