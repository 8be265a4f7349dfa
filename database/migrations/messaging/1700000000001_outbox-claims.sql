-- Up Migration

-- A row committed by a process with a running relay is published by that relay straight from
-- memory; until claimed_until no other relay touches it. Past it (the process died between
-- commit and publish, or the broker refused), any relay's poll publishes the row as before.
ALTER TABLE outbox ADD COLUMN claimed_until timestamptz;

-- Down Migration
ALTER TABLE outbox DROP COLUMN claimed_until;
