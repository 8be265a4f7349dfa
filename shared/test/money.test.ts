import { expect, test } from 'vitest';
import { formatMinor, parseAmount } from '../src/internal.ts';

// Moved from services/payment/test/domain.test.ts (and the same function of inventory and notification).
test('formatMinor: two decimals from integer minor units', () => {
  expect(formatMinor(12_550)).toBe('125.50');
  expect(formatMinor(5)).toBe('0.05');
  expect(formatMinor(0)).toBe('0.00');
  expect(formatMinor(100_000_000_000)).toBe('1000000000.00');
  expect(formatMinor(-1_999)).toBe('-19.99');
});

// Moved from services/inventory/test/domain.test.ts.
test('parseAmount reads numbers and decimal strings into minor units without floats', () => {
  expect(parseAmount('12.50')).toBe(1_250);
  expect(parseAmount('12.5')).toBe(1_250);
  expect(parseAmount('12')).toBe(1_200);
  expect(parseAmount(12.5)).toBe(1_250);
  expect(parseAmount(0.29)).toBe(29);
  expect(parseAmount(1_234_567.89)).toBe(123_456_789);
  expect(parseAmount(0)).toBe(0);
  for (const bad of ['12.505', '-1', '1e3', ' 1', '', 'abc', -1, 0.1 + 0.2, Number.NaN, Infinity, true, null]) expect(parseAmount(bad as number | string)).toBeUndefined();
  expect(formatMinor(parseAmount('1999.99')!)).toBe('1999.99');
});
