import { on } from '@checkout-saga/shared';
import type { OrderTables } from '../db.ts';
import type { SagaMetrics } from '../saga/metrics.ts';
import { applySagaEvent } from './saga-event.ts';

/** INVENTORY_PENDING (or PAYMENT_PENDING, out of order) → CONFIRMED + OrderConfirmed. The name is the inbox key: never rename it. */
export const inventoryReserved = (metrics?: SagaMetrics) =>
  on<OrderTables, 'InventoryReserved'>('InventoryReserved', 'order.saga.inventory-reserved', (context) => applySagaEvent(context, metrics));
