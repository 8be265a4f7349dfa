import { newEvent, on } from '@checkout-saga/shared';
import { v7 as uuidv7 } from 'uuid';
import type { InventoryTables } from '../db.ts';
import { decideReservation, quantitiesBySku } from '../domain/reservation.ts';
import type { InventoryConfig } from '../settings.ts';
import { adjustStock, insertIfAbsent, lockReservation, lockStock } from '../store.ts';

/**
 * Holds every line of a paid order or none, in one transaction: lock the order's record,
 * lock its products in SKU order, check them all, then decrement them all. Stock cannot be
 * oversold because no two transactions hold the same product row at once.
 */
export const reserveOnPaymentCompleted = (config: Pick<InventoryConfig, 'INVENTORY_FAILURE_RATE'>, random: () => number = Math.random) =>
  on<InventoryTables, 'PaymentCompleted'>('PaymentCompleted', 'inventory.reserve', async ({ event, trx, emit, log }) => {
    const { items } = event.payload;
    const existing = await lockReservation(trx, event.orderId);
    if (existing) {
      log.info({ status: existing.status }, 'order already has a reservation record; nothing reserved');
      return;
    }

    const stock = await lockStock(trx, quantitiesBySku(items).map(([sku]) => sku));
    const decision = decideReservation(items, stock, { failureRate: config.INVENTORY_FAILURE_RATE, random: random() });
    const reservationId = decision.action === 'reserve' ? uuidv7() : null;
    const inserted = await insertIfAbsent(trx, {
      order_id: event.orderId,
      saga_id: event.sagaId,
      reservation_id: reservationId,
      status: decision.action === 'reserve' ? 'RESERVED' : 'FAILED',
      reason: decision.action === 'fail' ? decision.reason : null,
      items: JSON.stringify(items),
    });
    if (!inserted) {
      // A cancellation recorded the order between our read and our insert (and has committed).
      log.info('order was cancelled before stock could be reserved; nothing reserved');
      return;
    }

    if (decision.action === 'reserve') {
      await adjustStock(trx, decision.quantities, -1);
      await emit(newEvent('InventoryReserved', event, { reservationId: reservationId!, items }));
      log.info({ reservationId, items }, 'stock reserved');
    } else {
      await emit(newEvent('InventoryFailed', event, { reason: decision.reason, skus: decision.skus }));
      log.info({ reason: decision.reason, skus: decision.skus }, 'reservation failed');
    }
  });
