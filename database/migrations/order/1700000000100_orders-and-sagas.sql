-- Up Migration

-- One row per accepted order. Money is integer minor units of `currency`, never a float.
CREATE TABLE orders (
  order_id        uuid        PRIMARY KEY,
  saga_id         uuid        NOT NULL UNIQUE,
  customer_id     text,
  customer_email  text        NOT NULL,
  items           jsonb       NOT NULL,
  amount_minor    bigint      NOT NULL CHECK (amount_minor >= 0),
  currency        text        NOT NULL CHECK (currency IN ('USD', 'EUR', 'GBP', 'CHF', 'CAD', 'AUD')),
  status          text        NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
  reason          text        CHECK (reason IN ('payment_failed', 'inventory_failed', 'timeout')),
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  CHECK ((status = 'CANCELLED') = (reason IS NOT NULL))
);
-- GET /orders?status=&limit= lists newest first, with or without a status filter.
CREATE INDEX orders_newest ON orders (created_at DESC, order_id DESC);
CREATE INDEX orders_status_newest ON orders (status, created_at DESC, order_id DESC);

-- The saga that drives one order; `state` is the state machine's, the order's `status` its public summary.
CREATE TABLE sagas (
  saga_id     uuid        PRIMARY KEY,
  order_id    uuid        NOT NULL UNIQUE REFERENCES orders (order_id),
  state       text        NOT NULL CHECK (state IN ('PAYMENT_PENDING', 'INVENTORY_PENDING', 'REFUND_PENDING', 'CONFIRMED', 'CANCELLED')),
  reason      text        CHECK (reason IN ('payment_failed', 'inventory_failed', 'timeout')),
  timeout_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  CHECK ((state = 'CANCELLED') = (reason IS NOT NULL))
);
ALTER TABLE orders ADD CONSTRAINT orders_saga_fk FOREIGN KEY (saga_id) REFERENCES sagas (saga_id) DEFERRABLE INITIALLY DEFERRED;
-- The timeout checker only ever looks at unfinished sagas, earliest deadline first.
CREATE INDEX sagas_due ON sagas (timeout_at) WHERE state NOT IN ('CONFIRMED', 'CANCELLED');

-- Every event a saga consumed or emitted, in order (`at`, then `id`). `at` is the clock at insert
-- time, taken after the saga row was locked, so it follows the order in which transitions commit.
CREATE TABLE saga_history (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  saga_id       uuid        NOT NULL REFERENCES sagas (saga_id),
  event_id      uuid        NOT NULL,
  type          text        NOT NULL,
  from_state    text,
  to_state      text        NOT NULL,
  compensation  boolean     NOT NULL DEFAULT false,
  at            timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX saga_history_by_saga ON saga_history (saga_id, at, id);

-- POST /orders Idempotency-Key: the first request's normalised body hash and its response.
-- The primary key is the lock that keeps concurrent retries from creating two orders.
CREATE TABLE idempotency_keys (
  key           text        PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND 200),
  request_hash  text        NOT NULL,
  status_code   integer     NOT NULL,
  response      json        NOT NULL, -- json, not jsonb: a replay returns the first body byte for byte
  order_id      uuid        NOT NULL REFERENCES orders (order_id) DEFERRABLE INITIALLY DEFERRED,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Down Migration
DROP TABLE idempotency_keys;
DROP TABLE saga_history;
ALTER TABLE orders DROP CONSTRAINT orders_saga_fk;
DROP TABLE sagas;
DROP TABLE orders;
