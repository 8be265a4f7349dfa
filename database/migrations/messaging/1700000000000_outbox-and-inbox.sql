-- Up Migration

-- Events waiting to be published, written in the same transaction as the change that caused them.
CREATE TABLE outbox (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id      uuid        NOT NULL UNIQUE,
  routing_key   text        NOT NULL,
  envelope      jsonb       NOT NULL,
  headers       jsonb       NOT NULL DEFAULT '{}',
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz,
  attempts      integer     NOT NULL DEFAULT 0,
  last_error    text
);
-- The relay only ever scans unpublished rows, oldest first.
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- One row per (event, handler) that has been applied: the inbox that makes redelivery harmless.
CREATE TABLE processed_events (
  event_id      uuid        NOT NULL,
  handler       text        NOT NULL,
  processed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, handler)
);
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);

-- Down Migration
DROP TABLE processed_events;
DROP TABLE outbox;
