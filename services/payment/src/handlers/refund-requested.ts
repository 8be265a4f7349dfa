import { on } from '@checkout-saga/shared';
import type { PaymentTables } from '../db.ts';
import { lockPayment } from '../store.ts';
import { refundIfCharged } from './refund.ts';

/** The order asks for its money back (inventory failed): refund the charge unless an OrderCancelled already did. */
export const refundOnRequest = () =>
  on<PaymentTables, 'PaymentRefundRequested'>('PaymentRefundRequested', 'payment.refund-on-request', async ({ event, trx, emit, log }) => {
    const payment = await lockPayment(trx, event.orderId);
    await refundIfCharged(trx, payment, event, emit, log);
  }, { compensation: true });
