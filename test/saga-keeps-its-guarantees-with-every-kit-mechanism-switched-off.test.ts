import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MECHANISMS, waitFor } from '@checkout-saga/shared/testing';
import { order, placeOrder, settledOrder } from './support/client.ts';
import { deadLetterCount, duplicateEveryEvent } from './support/broker.ts';
import { invariantViolations, stockLevels } from './support/invariants.ts';
import { startSystem, type System } from './support/system.ts';

/*
 * KIT_WITHOUT switches the kit's performance mechanisms off so a bench can measure what each
 * pays (docs/performance.md). The ways they give way to must be correct too, or the bench
 * would compare against a broken system: with all of them off at once (one round trip per
 * statement, unnamed statements, queries built per call, a socket write per frame, one
 * message and one order per transaction, the claim answered before the handler, rows read
 * back from the outbox table), and every event delivered twice, every flow ends as it should
 * and nothing is applied twice.
 */

let system: System;
const kitWithout = process.env.KIT_WITHOUT;

beforeAll(async () => {
  process.env.KIT_WITHOUT = MECHANISMS.join(',');
  system = await startSystem('without');
});

afterAll(async () => {
  await system?.stop();
  if (kitWithout === undefined) delete process.env.KIT_WITHOUT;
  else process.env.KIT_WITHOUT = kitWithout;
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

describe('with KIT_WITHOUT naming every mechanism', () => {
  test('orders arriving together, every event delivered twice: each flow ends as it should, nothing applied twice', async () => {
    const duplicator = await duplicateEveryEvent(system);
    try {
      const initial = await stockLevels(system);
      const placed = await Promise.all(Array.from({ length: 20 }, (_, index) => placeOrder(system, mixedOrder(index))));
      const settled = await Promise.all(placed.map(({ orderId }) => settledOrder(system, orderId, 40_000)));
      expect(settled.filter((view, index) => index % 5 >= 3).every((view) => view.status === 'CONFIRMED')).toBe(true);
      expect(settled.filter((view) => view.reason === 'payment_failed')).toHaveLength(4);
      expect(settled.filter((_, index) => index % 5 === 2).every((view) => view.status === 'CANCELLED')).toBe(true);
      expect(duplicator.copies()).toBeGreaterThanOrEqual(placed.length * 3);
      await waitFor(async () => (await invariantViolations(system, initial)).length === 0, { message: 'invariants with every mechanism off' }).catch(
        async () => expect(await invariantViolations(system, initial)).toEqual([]),
      );
      const payments = await system.paymentDb.selectFrom('payments').select('order_id').execute();
      expect(payments).toHaveLength(new Set(payments.map((row) => row.order_id)).size);
      expect(await deadLetterCount(system)).toBe(0);
    } finally {
      await duplicator.stop();
    }
  });
});
