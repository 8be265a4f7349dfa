import { describe, expect, test } from 'vitest';
import { decideRelease, decideReservation, quantitiesBySku } from '../src/domain/reservation.ts';

const noFailure = { failureRate: 0, random: 0.5 };

describe('decideReservation', () => {
  const stock = new Map([['A', 5], ['B', 1]]);
  test('reserves when every line fits, quantities summed per SKU in SKU order', () => {
    expect(decideReservation([{ sku: 'B', qty: 1 }, { sku: 'A', qty: 2 }, { sku: 'A', qty: 3 }], stock, noFailure)).toEqual({
      action: 'reserve',
      quantities: [['A', 5], ['B', 1]],
    });
  });
  test('one short line fails the whole order, naming the short SKUs (lines of one SKU are added up)', () => {
    expect(decideReservation([{ sku: 'A', qty: 3 }, { sku: 'A', qty: 3 }, { sku: 'B', qty: 1 }], stock, noFailure)).toEqual({ action: 'fail', reason: 'out_of_stock', skus: ['A'] });
  });
  test('an unknown SKU wins over a short one', () => {
    expect(decideReservation([{ sku: 'Z', qty: 1 }, { sku: 'B', qty: 9 }], stock, noFailure)).toEqual({ action: 'fail', reason: 'unknown_sku', skus: ['Z'] });
  });
  test('the failure rate fails only orders that would fit', () => {
    expect(decideReservation([{ sku: 'A', qty: 1 }], stock, { failureRate: 1, random: 0.99 })).toEqual({ action: 'fail', reason: 'simulated', skus: ['A'] });
    expect(decideReservation([{ sku: 'A', qty: 9 }], stock, { failureRate: 1, random: 0 })).toMatchObject({ reason: 'out_of_stock' });
    expect(decideReservation([{ sku: 'A', qty: 1 }], stock, { failureRate: 0.5, random: 0.5 })).toMatchObject({ action: 'reserve' });
  });
});

test('quantitiesBySku sorts in byte order', () => {
  expect(quantitiesBySku([{ sku: 'b', qty: 1 }, { sku: 'B', qty: 1 }, { sku: 'A-2', qty: 1 }, { sku: 'A.1', qty: 1 }]).map(([sku]) => sku)).toEqual(['A-2', 'A.1', 'B', 'b']);
});

test('only a held reservation is released', () => {
  expect(decideRelease('RESERVED')).toEqual({ action: 'release' });
  for (const status of ['COMMITTED', 'RELEASED', 'CANCELLED_BEFORE_RESERVE', 'FAILED'] as const) expect(decideRelease(status).action).toBe('none');
});
