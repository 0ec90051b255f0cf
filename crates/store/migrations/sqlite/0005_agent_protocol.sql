-- Agent enrolment: an admin creates a one-time token; an agent trades it for its own
-- credential (stored as a hash in agents.credential_hash). Only hashes are stored.
CREATE TABLE agent_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    agent_group TEXT,
    token_hash  TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    agent_id    TEXT REFERENCES agents (id) ON DELETE SET NULL
);
CREATE INDEX agent_tokens_created_idx ON agent_tokens (created_at, id);
-- The offline sweep finds online agents by heartbeat age.
CREATE INDEX agents_status_heartbeat_idx ON agents (status, last_heartbeat_at);
