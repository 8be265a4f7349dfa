import { on } from '@checkout-saga/shared';
import type { PaymentTables } from '../db.ts';
import { insertOrLock } from '../store.ts';
import { refundIfCharged } from './refund.ts';

/**
 * The compensation trigger. With no payment yet the order is recorded as SKIPPED, so a late
 * OrderCreated charges nothing; a completed charge is refunded unless a refund request was first.
 */
export const refundOnOrderCancelled = () =>
  on<PaymentTables, 'OrderCancelled'>('OrderCancelled', 'payment.refund-on-cancel', async ({ event, trx, emit, log }) => {
    const payment = await insertOrLock(trx, {
      order_id: event.orderId,
      saga_id: event.sagaId,
      payment_id: null,
      status: 'SKIPPED',
      amount_minor: event.payload.amountMinor,
      currency: event.payload.currency,
      failure_reason: null,
      refunded_at: null,
    });
    if (!payment) {
      log.info({ reason: event.payload.reason }, 'order cancelled before any charge; recorded as SKIPPED');
      return;
    }
    await refundIfCharged(trx, payment, event, emit, log);
  }, { compensation: true });
