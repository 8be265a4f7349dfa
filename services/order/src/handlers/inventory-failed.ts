import { on } from '@checkout-saga/shared';
import type { OrderTables } from '../db.ts';
import type { SagaMetrics } from '../saga/metrics.ts';
import { applySagaEvent } from './saga-event.ts';

/** INVENTORY_PENDING (or PAYMENT_PENDING, out of order) → REFUND_PENDING + PaymentRefundRequested. The name is the inbox key: never rename it. */
export const inventoryFailed = (metrics?: SagaMetrics) =>
  on<OrderTables, 'InventoryFailed'>('InventoryFailed', 'order.saga.inventory-failed', (context) => applySagaEvent(context, metrics));
