import { on } from '@checkout-saga/shared';
import type { OrderTables } from '../db.ts';
import type { SagaMetrics } from '../saga/metrics.ts';
import { applySagaEvent } from './saga-event.ts';

/** PAYMENT_PENDING → CANCELLED(payment_failed) + OrderCancelled. The name is the inbox key: never rename it. */
export const paymentFailed = (metrics?: SagaMetrics) =>
  on<OrderTables, 'PaymentFailed'>('PaymentFailed', 'order.saga.payment-failed', (context) => applySagaEvent(context, metrics));
