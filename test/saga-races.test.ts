import { afterEach, describe, expect, test } from 'vitest';
import { waitFor } from '@checkout-saga/shared/testing';
import { order, placeOrder, settledOrder } from './support/client.ts';
import { duplicateEveryEvent, deadLetterCount } from './support/broker.ts';
import { invariantViolations, stockLevels } from './support/invariants.ts';
import { startSystem, type System } from './support/system.ts';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

/** A mix that exercises every flow: confirmations, declines, out-of-stock and unknown products. */
const mixedOrder = (index: number) => {
  switch (index % 5) {
    case 0: return order({ amount: '0.75' });
    case 1: return order({ items: [{ sku: 'LIMITED-EDITION', qty: 2 }] });
    case 2: return order({ items: [{ sku: 'NOT-A-PRODUCT', qty: 1 }] });
    default: return order({ items: [{ sku: 'MOUSE', qty: 1 }, { sku: 'HEADSET', qty: 1 }] });
  }
};

describe('races and redelivery', () => {
  test('every event delivered twice: nothing is applied twice', async () => {
    system = await startSystem('dupes');
    const duplicator = await duplicateEveryEvent(system);
    try {
      const initial = await stockLevels(system);
      const placed = await Promise.all(Array.from({ length: 20 }, (_, index) => placeOrder(system!, mixedOrder(index))));
      const settled = await Promise.all(placed.map(({ orderId }) => settledOrder(system!, orderId, 40_000)));
      expect(settled.some((view) => view.status === 'CONFIRMED')).toBe(true);
      expect(settled.some((view) => view.status === 'CANCELLED')).toBe(true);
      expect(duplicator.copies()).toBeGreaterThanOrEqual(placed.length * 3);
      // Confirmed orders were charged once and took stock once; cancelled ones hold nothing.
      await waitFor(async () => (await invariantViolations(system!, initial)).length === 0, { message: 'invariants with duplicates' }).catch(
        async () => expect(await invariantViolations(system!, initial)).toEqual([]),
      );
      const payments = await system.paymentDb.selectFrom('payments').select('order_id').execute();
      expect(payments).toHaveLength(new Set(payments.map((row) => row.order_id)).size);
      expect(await deadLetterCount(system)).toBe(0);
    } finally {
      await duplicator.stop();
    }
  });

  test('two instances each of payment and inventory: still exactly-once effects', async () => {
    system = await startSystem('scaled', { paymentInstances: 2, inventoryInstances: 2 });
    const initial = await stockLevels(system);
    const placed = await Promise.all(Array.from({ length: 40 }, (_, index) => placeOrder(system!, mixedOrder(index))));
    const settled = await Promise.all(placed.map(({ orderId }) => settledOrder(system!, orderId, 40_000)));
    expect(settled.filter((view) => view.status === 'CONFIRMED').length).toBeGreaterThan(0);
    expect(settled.filter((view) => view.reason === 'payment_failed').length).toBe(8);
    await waitFor(async () => (await invariantViolations(system!, initial)).length === 0, { message: 'invariants when scaled' }).catch(
      async () => expect(await invariantViolations(system!, initial)).toEqual([]),
    );
    expect((await stockLevels(system)).get('LIMITED-EDITION')).toBe(initial.get('LIMITED-EDITION')! - 2 * settled.filter((view, index) => index % 5 === 1 && view.status === 'CONFIRMED').length);
  });
});
