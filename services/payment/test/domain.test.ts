import { describe, expect, test } from 'vitest';
import { decideCharge, decideRefund } from '../src/domain/payment.ts';

describe('decideCharge', () => {
  const gateway = { failureRate: 0, random: 0.5 };
  test('a first charge of 1.00 or more succeeds', () => {
    expect(decideCharge(undefined, 100, gateway)).toEqual({ action: 'charge' });
  });
  test('under 1.00 is declined whatever the failure rate', () => {
    expect(decideCharge(undefined, 99, gateway)).toEqual({ action: 'fail', reason: 'declined' });
    expect(decideCharge(undefined, 0, { failureRate: 1, random: 0 })).toEqual({ action: 'fail', reason: 'declined' });
  });
  test('the failure rate fails a charge when random < rate', () => {
    expect(decideCharge(undefined, 500, { failureRate: 0.3, random: 0.29 })).toEqual({ action: 'fail', reason: 'simulated' });
    expect(decideCharge(undefined, 500, { failureRate: 0.3, random: 0.3 })).toEqual({ action: 'charge' });
    expect(decideCharge(undefined, 500, { failureRate: 1, random: 0.999_999 })).toEqual({ action: 'fail', reason: 'simulated' });
  });
  test('an order with a payment record is never charged again', () => {
    for (const status of ['COMPLETED', 'FAILED', 'REFUNDED', 'SKIPPED'] as const) {
      expect(decideCharge(status, 500, gateway)).toEqual({ action: 'none', because: status });
    }
  });
});

test('decideRefund: only a completed charge is refunded', () => {
  expect(decideRefund('COMPLETED')).toEqual({ action: 'refund' });
  for (const status of ['FAILED', 'REFUNDED', 'SKIPPED', undefined] as const) expect(decideRefund(status).action).toBe('none');
});
