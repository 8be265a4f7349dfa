import { on } from '@checkout-saga/shared';
import type { InventoryTables } from '../db.ts';
import { decideRelease, quantitiesBySku } from '../domain/reservation.ts';
import { adjustStock, insertOrLock, lockStock, setReservationStatus } from '../store.ts';

/**
 * The compensation trigger. Held stock goes back exactly once (RESERVED → RELEASED); with no
 * record yet the cancellation is recorded (CANCELLED_BEFORE_RESERVE), so a later
 * PaymentCompleted reserves nothing.
 */
export const releaseOnOrderCancelled = () =>
  on<InventoryTables, 'OrderCancelled'>('OrderCancelled', 'inventory.release', async ({ event, trx, log }) => {
    const { reason, items } = event.payload;
    const existing = await insertOrLock(trx, {
      order_id: event.orderId,
      saga_id: event.sagaId,
      reservation_id: null,
      status: 'CANCELLED_BEFORE_RESERVE',
      reason,
      items: JSON.stringify(items),
    });
    if (!existing) {
      log.info({ reason }, 'order cancelled before any reservation; recorded so none will be made');
      return;
    }
    const decision = decideRelease(existing.status);
    if (decision.action === 'none') {
      log.info({ status: decision.because }, 'nothing held; nothing released');
      return;
    }
    // The stock that was taken is what the reservation recorded, whatever the cancellation says.
    const quantities = quantitiesBySku(existing.items);
    await lockStock(trx, quantities.map(([sku]) => sku));
    await adjustStock(trx, quantities, 1);
    await setReservationStatus(trx, event.orderId, 'RELEASED', reason);
    log.info({ reservationId: existing.reservation_id, reason }, 'reservation released; stock restored');
  }, { compensation: true });
