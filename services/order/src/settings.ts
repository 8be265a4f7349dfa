import { dashboardSettings } from '@checkout-saga/dashboard';
import { messagingSettings } from '@checkout-saga/shared';
import { Type, type Static, type TObject } from 'typebox';

/** The order service's environment: the kit's messaging settings, the saga timeout and how often it is checked, and the dashboard's (it serves the dashboard). */
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
  ...dashboardSettings,
};

export type OrderConfig = Static<TObject<typeof orderSettings>>;
