import { newEvent, on } from '@checkout-saga/shared';
import { v7 as uuidv7 } from 'uuid';
import type { InventoryTables } from '../db.ts';
import { decideReservation, quantitiesBySku } from '../domain/reservation.ts';
import type { InventoryConfig } from '../settings.ts';
import { insertHoldingStock, insertIfAbsent, lockStock } from '../store.ts';

/**
 * Holds every line of a paid order or none, in one transaction: lock its products in SKU order,
 * check them all, then insert the order's record and decrement them all. Stock cannot be
 * oversold because no two transactions hold the same product row at once. The insert claims
 * the order: if it already has a record (a cancellation came first) nothing is reserved.
 */
export const reserveOnPaymentCompleted = (config: Pick<InventoryConfig, 'INVENTORY_FAILURE_RATE'>, random: () => number = Math.random) =>
  on<InventoryTables, 'PaymentCompleted'>('PaymentCompleted', 'inventory.reserve', async ({ event, trx, emit, log }) => {
    const { items } = event.payload;
    const stock = await lockStock(trx, quantitiesBySku(items).map(([sku]) => sku));
    const decision = decideReservation(items, stock, { failureRate: config.INVENTORY_FAILURE_RATE, random: random() });
    const reservationId = decision.action === 'reserve' ? uuidv7() : null;
    const record = {
      order_id: event.orderId,
      saga_id: event.sagaId,
      reservation_id: reservationId,
      status: decision.action === 'reserve' ? 'RESERVED' : 'FAILED',
      reason: decision.action === 'fail' ? decision.reason : null,
      items: JSON.stringify(items),
    } as const;
    const inserted = decision.action === 'reserve' ? await insertHoldingStock(trx, record, decision.quantities) : await insertIfAbsent(trx, record);
    if (!inserted) {
      // Not read for the log: locking the record now, after the products, could deadlock with a release.
      log.info('order already has a reservation record (cancelled first); nothing reserved');
      return;
    }

    if (decision.action === 'reserve') {
      await emit(newEvent('InventoryReserved', event, { reservationId: reservationId!, items }));
      log.info({ reservationId, items }, 'stock reserved');
    } else {
      await emit(newEvent('InventoryFailed', event, { reason: decision.reason, skus: decision.skus }));
      log.info({ reason: decision.reason, skus: decision.skus }, 'reservation failed');
    }
  });
