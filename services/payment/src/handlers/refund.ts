import { newEvent, type Envelope, type Logger } from '@checkout-saga/shared';
import type { Transaction } from 'kysely';
import type { Payment, PaymentTables } from '../db.ts';
import { decideRefund } from '../domain/payment.ts';
import { markRefunded } from '../store.ts';

/** Refunds the order's payment if it is a completed charge (the caller holds its row lock); otherwise does nothing. */
export async function refundIfCharged(
  trx: Transaction<PaymentTables>,
  payment: Payment | undefined,
  cause: Envelope,
  emit: (events: Envelope) => Promise<void>,
  log: Logger,
): Promise<void> {
  const decision = decideRefund(payment?.status);
  if (decision.action === 'none' || !payment?.payment_id) {
    log.info({ status: payment?.status ?? 'none' }, 'nothing to refund');
    return;
  }
  await markRefunded(trx, payment.order_id);
  await emit(newEvent('PaymentRefunded', cause, { paymentId: payment.payment_id, amountMinor: payment.amount_minor, currency: payment.currency }));
  log.info({ paymentId: payment.payment_id, amountMinor: payment.amount_minor, trigger: cause.type }, 'payment refunded');
}
