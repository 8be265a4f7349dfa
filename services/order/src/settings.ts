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
};

export type OrderConfig = Static<TObject<typeof orderSettings>>;
