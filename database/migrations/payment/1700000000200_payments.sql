-- Up Migration

-- One row per order the payment service has heard of: its one charge (COMPLETED or FAILED),
-- that charge refunded (REFUNDED), or a cancellation that arrived before any charge (SKIPPED),
-- which makes a later OrderCreated charge nothing. The primary key is what keeps it to one
-- charge per order: every event of an order serialises on this row.
CREATE TABLE payments (
  order_id        uuid        PRIMARY KEY,
  saga_id         uuid        NOT NULL,
  payment_id      uuid        UNIQUE,
  status          text        NOT NULL CHECK (status IN ('COMPLETED', 'FAILED', 'REFUNDED', 'SKIPPED')),
  amount_minor    bigint      NOT NULL CHECK (amount_minor >= 0),
  currency        text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  failure_reason  text        CHECK (failure_reason IN ('declined', 'simulated')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  refunded_at     timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT payments_skipped_has_no_payment CHECK ((status = 'SKIPPED') = (payment_id IS NULL)),
  CONSTRAINT payments_failed_has_reason CHECK ((status = 'FAILED') = (failure_reason IS NOT NULL)),
  CONSTRAINT payments_refunded_has_time CHECK ((status = 'REFUNDED') = (refunded_at IS NOT NULL))
);

-- Down Migration
DROP TABLE payments;
