import { on } from '@checkout-saga/shared';
import type { InventoryTables } from '../db.ts';
import { commitIfReserved, lockReservation } from '../store.ts';

/**
 * The order is confirmed: the stock it held is sold for good (RESERVED → COMMITTED). This is
 * on every confirmed order's path, so the status is checked by the update itself (only a
 * RESERVED record moves) rather than by locking the row and deciding first.
 */
export const commitOnOrderConfirmed = () =>
  on<InventoryTables, 'OrderConfirmed'>('OrderConfirmed', 'inventory.commit', async ({ event, trx, log }) => {
    const committed = await commitIfReserved(trx, event.orderId);
    if (!committed) {
      const record = await lockReservation(trx, event.orderId);
      log.warn({ status: record?.status ?? 'no reservation' }, 'order confirmed without a held reservation; nothing committed');
      return;
    }
    log.info({ reservationId: committed.reservation_id }, 'reservation committed');
  });
