-- Dashboard sign-in sessions. The cookie carries a random session ID; only its SHA-256 is
-- stored, so a read of this table cannot be replayed as a cookie. Sessions die with their key.
CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_expiry_idx ON web_sessions (expires_at);
CREATE INDEX web_sessions_key_idx ON web_sessions (key_id);
