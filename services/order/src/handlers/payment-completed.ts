import { on } from '@checkout-saga/shared';
import type { OrderTables } from '../db.ts';
import type { SagaMetrics } from '../saga/metrics.ts';
import { applySagaEvent } from './saga-event.ts';

/** PAYMENT_PENDING → INVENTORY_PENDING; late or unexpected otherwise. The name is the inbox key: never rename it. */
export const paymentCompleted = (metrics?: SagaMetrics) =>
  on<OrderTables, 'PaymentCompleted'>('PaymentCompleted', 'order.saga.payment-completed', (context) => applySagaEvent(context, metrics));
