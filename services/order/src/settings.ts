import { messagingSettings } from '@checkout-saga/shared';
import { Type, type Static, type TObject } from 'typebox';

/** The order service's environment: the kit's messaging settings plus the saga timeout and how often it is checked. */
export const orderSettings = {
  ...messagingSettings('order', 3000),
  SAGA_TIMEOUT_MS: Type.Integer({
    default: 90_000,
    minimum: 100,
    description: 'milliseconds a saga may stay unfinished before it is cancelled with reason timeout, at least 100',
  }),
  TIMEOUT_CHECK_INTERVAL_MS: Type.Integer({
    default: 1000,
    minimum: 10,
    description: 'milliseconds between two runs of the saga timeout checker, at least 10',
  }),
  IDEMPOTENCY_KEY_RETENTION_MS: Type.Integer({
    default: 86_400_000,
    minimum: 60_000,
    description: 'milliseconds to keep an Idempotency-Key and its first answer, after which the same key makes a new order; at least 60000',
  }),
  // The dashboard (GET /): read-only views of the other services, a UI convenience outside the saga. Unset: that panel says "not configured".
  DASHBOARD_INVENTORY_URL: Type.Optional(
    Type.String({ pattern: '^https?://', description: "inventory's base URL, such as http://127.0.0.1:3002, whose GET /products and GET /metrics the dashboard shows; unset: not shown" }),
  ),
  DASHBOARD_PAYMENT_URL: Type.Optional(
    Type.String({ pattern: '^https?://', description: "payment's base URL, such as http://127.0.0.1:3001, whose GET /metrics the dashboard shows; unset: not shown" }),
  ),
  DASHBOARD_NOTIFICATION_URL: Type.Optional(
    Type.String({ pattern: '^https?://', description: "notification's base URL, such as http://127.0.0.1:3003, whose GET /metrics the dashboard shows; unset: not shown" }),
  ),
  DASHBOARD_PAYMENT_PROCESSING_MS: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 600_000,
      description: "payment's PAYMENT_PROCESSING_MS as far as this service is told, from 0 to 600000, so the dashboard knows whether a slow payment reaches SAGA_TIMEOUT_MS; unset: unknown",
    }),
  ),
};

export type OrderConfig = Static<TObject<typeof orderSettings>>;
