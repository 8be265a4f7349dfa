import { on } from '@checkout-saga/shared';
import type { OrderTables } from '../db.ts';
import { applySagaEvent } from './saga-event.ts';

/** REFUND_PENDING → CANCELLED(inventory_failed) + OrderCancelled. The name is the inbox key: never rename it. */
export const paymentRefunded = on<OrderTables, 'PaymentRefunded'>('PaymentRefunded', 'order.saga.payment-refunded', applySagaEvent);
