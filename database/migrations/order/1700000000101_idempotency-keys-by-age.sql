-- Up Migration

-- The retention sweep deletes keys older than IDEMPOTENCY_KEY_RETENTION_MS, oldest first.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Down Migration
DROP INDEX idempotency_keys_by_age;
