import { on } from '@checkout-saga/shared';
import type { OrderTables } from '../db.ts';
import type { SagaMetrics } from '../saga/metrics.ts';
import { applySagaEvent } from './saga-event.ts';

/** REFUND_PENDING → CANCELLED(inventory_failed) + OrderCancelled. The name is the inbox key: never rename it. */
export const paymentRefunded = (metrics?: SagaMetrics) =>
  on<OrderTables, 'PaymentRefunded'>('PaymentRefunded', 'order.saga.payment-refunded', (context) => applySagaEvent(context, metrics));
