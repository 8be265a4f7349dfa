import { messagingSettings } from '@checkout-saga/shared';
import { Type, type Static, type TObject } from 'typebox';

/** Every environment variable the payment service reads: the kit's shared ones plus the simulated gateway's. */
export const paymentSettings = {
  ...messagingSettings('payment', 3001),
  PAYMENT_FAILURE_RATE: Type.Number({
    default: 0,
    minimum: 0,
    maximum: 1,
    description: 'the share of charges of 1.00 or more the simulated gateway fails (reason "simulated"), from 0 to 1',
  }),
  PAYMENT_PROCESSING_MS: Type.Integer({
    default: 0,
    minimum: 0,
    maximum: 600_000,
    description: 'milliseconds the simulated gateway takes per charge, from 0 to 600000',
  }),
};

export type PaymentConfig = Static<TObject<typeof paymentSettings>>;
