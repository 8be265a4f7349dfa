import { newEvent, on } from '@checkout-saga/shared';
import { setTimeout as sleep } from 'node:timers/promises';
import { v7 as uuidv7 } from 'uuid';
import type { PaymentTables } from '../db.ts';
import { decideCharge } from '../domain/payment.ts';
import type { PaymentConfig } from '../settings.ts';
import { insertOrLock } from '../store.ts';

/**
 * Charges an order at most once. The payment row is inserted before the (simulated) gateway
 * call and the transaction stays open through it, so an OrderCancelled racing the charge
 * blocks on the row until the charge commits, then finds it COMPLETED and refunds it.
 * With a gateway delay it runs in a transaction of its own, so its wait holds up no batch.
 */
export const chargeOnOrderCreated = (config: Pick<PaymentConfig, 'PAYMENT_FAILURE_RATE' | 'PAYMENT_PROCESSING_MS'>, random: () => number = Math.random) =>
  on<PaymentTables, 'OrderCreated'>('OrderCreated', 'payment.charge', async ({ event, trx, emit, log }) => {
    const { amountMinor, currency, items } = event.payload;
    // Decided as for an order without a payment record: inserting the row is what claims the
    // order, and if it already has one (charged, failed, or cancelled first) the insert finds it.
    const decision = decideCharge(undefined, amountMinor, { failureRate: config.PAYMENT_FAILURE_RATE, random: random() });
    if (decision.action === 'none') throw new Error(`a charge decided for an order without a payment cannot be "none" (${decision.because})`);

    const paymentId = uuidv7();
    const existing = await insertOrLock(trx, {
      order_id: event.orderId,
      saga_id: event.sagaId,
      payment_id: paymentId,
      status: decision.action === 'charge' ? 'COMPLETED' : 'FAILED',
      amount_minor: amountMinor,
      currency,
      failure_reason: decision.action === 'fail' ? decision.reason : null,
      refunded_at: null,
    });
    if (existing) {
      log.info({ status: existing.status }, 'order already has a payment record; nothing charged');
      return;
    }

    if (config.PAYMENT_PROCESSING_MS > 0) await sleep(config.PAYMENT_PROCESSING_MS);

    if (decision.action === 'charge') {
      await emit(newEvent('PaymentCompleted', event, { paymentId, items, amountMinor, currency }));
      log.info({ paymentId, amountMinor, currency }, 'payment completed');
    } else {
      await emit(newEvent('PaymentFailed', event, { reason: decision.reason, amountMinor, currency }));
      log.info({ paymentId, reason: decision.reason, amountMinor }, 'payment failed');
    }
  }, { batch: config.PAYMENT_PROCESSING_MS === 0 });
