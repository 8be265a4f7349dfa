import { describe, expect, test } from 'vitest';
import { formatMinor, readAmount } from '../src/internal.ts';

describe('readAmount', () => {
  test.each([
    ['125.50', 12550],
    ['125.5', 12550],
    ['125', 12500],
    ['0', 0],
    ['0.00', 0],
    ['0.01', 1],
    ['0.1', 10],
    ['007.05', 705],
    ['1000000000', 100_000_000_000],
    ['1000000000.00', 100_000_000_000],
    ['999999999.99', 99_999_999_999],
  ])('string %j → %i minor units', (text, minor) => {
    expect(readAmount(text)).toEqual({ ok: true, minor });
  });

  test.each([
    [125.5, 12550],
    [125.55, 12555],
    [19.9, 1990],
    [0.29, 29], // 0.29 * 100 is 28.999999999999996 in floats: we never multiply one
    [1.005e2, 10050],
    [0.07, 7],
    [1e9, 100_000_000_000],
    [0, 0],
    [-0, 0],
    [42, 4200],
  ])('number %d → %i minor units', (value, minor) => {
    expect(readAmount(value)).toEqual({ ok: true, minor });
  });

  test.each([
    ['1.234', /two decimal places/],
    [1.234, /two decimal places/],
    [1.005, /two decimal places/],
    ['-1', /negative/],
    [-1, /negative/],
    ['-0.00', /negative/],
    ['1e3', /exponent/],
    ['1E3', /exponent/],
    [1e21, /exponent/],
    [1e-7, /exponent/],
    ['1000000000.01', /exceed/],
    [1000000000.01, /exceed/],
    ['99999999999999999999999', /exceed/],
    ['9'.repeat(100_000), /exceed/],
    [Number.NaN, /finite/],
    [Number.POSITIVE_INFINITY, /finite/],
    ['NaN', /decimal/],
    ['Infinity', /decimal/],
    ['', /decimal/],
    [' 1.00', /decimal/],
    ['1.00 ', /decimal/],
    ['1,00', /decimal/],
    ['.5', /decimal/],
    ['5.', /decimal/],
    ['+5', /decimal/],
    ['0x10', /decimal/],
    ['1_000', /decimal/],
    ['١٢٣', /decimal/],
  ])('%j is rejected', (value, error) => {
    const result = readAmount(value);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(error);
  });

  test('anything but a number or a string is rejected', () => {
    expect(readAmount(null as unknown as string).ok).toBe(false);
    expect(readAmount(true as unknown as string).ok).toBe(false);
  });
});

describe('formatMinor', () => {
  test.each([
    [12550, '125.50'],
    [12555, '125.55'],
    [5, '0.05'],
    [0, '0.00'],
    [100, '1.00'],
    [100_000_000_000, '1000000000.00'],
    [-250, '-2.50'],
    [9_007_199_254_740_991, '90071992547409.91'],
    [12345678901234567890n, '123456789012345678.90'],
  ])('%d → %s', (minor, text) => {
    expect(formatMinor(minor)).toBe(text);
  });

  test('refuses a number that is not a whole count of minor units', () => {
    expect(() => formatMinor(1.5)).toThrow(RangeError);
    expect(() => formatMinor(Number.NaN)).toThrow(RangeError);
  });

  test('round-trips every cent of a range', () => {
    for (let minor = 0; minor < 10_000; minor++) {
      const text = formatMinor(minor);
      expect(readAmount(text)).toEqual({ ok: true, minor });
      expect(readAmount(Number(text))).toEqual({ ok: true, minor });
    }
  });
});
