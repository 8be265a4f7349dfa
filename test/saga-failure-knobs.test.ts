import { afterEach, describe, expect, test } from 'vitest';
import { waitFor } from '@checkout-saga/shared/testing';
import { order, placeOrder, settledOrder } from './support/client.ts';
import { invariantViolations, stockLevels } from './support/invariants.ts';
import { startSystem, type System } from './support/system.ts';

/* The failure knobs users turn to watch compensation happen, one system per setting. */

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const paymentStatus = async (s: System, orderId: string) =>
  (await s.paymentDb.selectFrom('payments').select('status').where('order_id', '=', orderId).executeTakeFirst())?.status;

describe('failure knobs', () => {
  test('PAYMENT_FAILURE_RATE=1: every order is cancelled for payment_failed, nothing charged', async () => {
    system = await startSystem('payfail', { payment: { PAYMENT_FAILURE_RATE: '1' } });
    const initial = await stockLevels(system);
    const placed = await Promise.all([1, 2, 3].map(() => placeOrder(system!, order())));
    for (const { orderId } of placed) {
      expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CANCELLED', reason: 'payment_failed' });
      expect(await paymentStatus(system, orderId)).toBe('FAILED');
    }
    expect(await invariantViolations(system, initial)).toEqual([]);
  });

  test('INVENTORY_FAILURE_RATE=1: every charge is refunded and the order cancelled for inventory_failed', async () => {
    system = await startSystem('invfail', { inventory: { INVENTORY_FAILURE_RATE: '1' } });
    const initial = await stockLevels(system);
    const placed = await Promise.all([1, 2, 3].map(() => placeOrder(system!, order())));
    for (const { orderId } of placed) {
      expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CANCELLED', reason: 'inventory_failed' });
      expect(await paymentStatus(system, orderId)).toBe('REFUNDED');
    }
    expect(await stockLevels(system)).toEqual(initial);
    expect(await invariantViolations(system, initial)).toEqual([]);
  });

  test('payment slower than SAGA_TIMEOUT_MS: the saga times out and the late charge is refunded (or never made)', async () => {
    system = await startSystem('timeout', {
      order: { SAGA_TIMEOUT_MS: '300', TIMEOUT_CHECK_INTERVAL_MS: '50' },
      payment: { PAYMENT_PROCESSING_MS: '1500' },
    });
    const initial = await stockLevels(system);
    const { orderId } = await placeOrder(system, order());
    expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CANCELLED', reason: 'timeout' });
    const settledPayment = await waitFor(async () => {
      const status = await paymentStatus(system!, orderId);
      return status === 'REFUNDED' || status === 'SKIPPED' ? status : undefined;
    }, { message: 'the late charge to be refunded or skipped' });
    expect(['REFUNDED', 'SKIPPED']).toContain(settledPayment);
    await waitFor(async () => (await invariantViolations(system!, initial)).length === 0, { message: 'invariants after timeout' });
  });
});
