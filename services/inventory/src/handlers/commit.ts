import { on } from '@checkout-saga/shared';
import type { InventoryTables } from '../db.ts';
import { decideCommit } from '../domain/reservation.ts';
import { lockReservation, setReservationStatus } from '../store.ts';

/** The order is confirmed: the stock it held is sold for good (RESERVED → COMMITTED). */
export const commitOnOrderConfirmed = () =>
  on<InventoryTables, 'OrderConfirmed'>('OrderConfirmed', 'inventory.commit', async ({ event, trx, log }) => {
    const reservation = await lockReservation(trx, event.orderId);
    const decision = decideCommit(reservation?.status);
    if (decision.action === 'none') {
      log.warn({ status: decision.because }, 'order confirmed without a held reservation; nothing committed');
      return;
    }
    await setReservationStatus(trx, event.orderId, 'COMMITTED');
    log.info({ reservationId: reservation?.reservation_id }, 'reservation committed');
  });
