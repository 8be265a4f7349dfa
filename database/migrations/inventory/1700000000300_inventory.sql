-- Up Migration

-- The catalogue and its stock. The CHECK on stock is the last line of defence: the
-- reservation handler locks and checks every line before it decrements anything.
CREATE TABLE products (
  sku          text        PRIMARY KEY CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  price_minor  bigint      NOT NULL CHECK (price_minor >= 0),
  stock        integer     NOT NULL CHECK (stock >= 0),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per order the inventory service has decided about: stock held (RESERVED), then
-- sold (COMMITTED) or given back (RELEASED); a failed reservation (FAILED, nothing held); or
-- a cancellation that arrived before any reservation (CANCELLED_BEFORE_RESERVE), which makes
-- a later PaymentCompleted reserve nothing. The primary key keeps it to one decision per
-- order, and every event of an order serialises on this row.
CREATE TABLE reservations (
  order_id        uuid        PRIMARY KEY,
  saga_id         uuid        NOT NULL,
  reservation_id  uuid        UNIQUE,
  status          text        NOT NULL CHECK (status IN ('RESERVED', 'COMMITTED', 'RELEASED', 'CANCELLED_BEFORE_RESERVE', 'FAILED')),
  reason          text,
  items           jsonb       NOT NULL CHECK (jsonb_typeof(items) = 'array'),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT reservations_held_has_id CHECK ((status IN ('RESERVED', 'COMMITTED', 'RELEASED')) = (reservation_id IS NOT NULL)),
  CONSTRAINT reservations_failed_has_reason CHECK (status <> 'FAILED' OR reason IS NOT NULL)
);

-- Down Migration
DROP TABLE reservations;
DROP TABLE products;
