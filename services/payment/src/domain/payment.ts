import type { EventPayload } from '@checkout-saga/shared';

/*
 * The payment decisions, free of I/O. The handlers read and lock the order's payments row,
 * ask these functions what to do, and write the answer.
 */

export type PaymentStatus = 'COMPLETED' | 'FAILED' | 'REFUNDED' | 'SKIPPED';
export type PaymentFailureReason = EventPayload<'PaymentFailed'>['reason'];

/** Amounts below this many minor units (1.00) are always declined. */
export const MINIMUM_CHARGE_MINOR = 100;

export type ChargeDecision =
  | { action: 'charge' }
  | { action: 'fail'; reason: PaymentFailureReason }
  /** The order already has a payment record: charged or failed before, or cancelled before any charge. */
  | { action: 'none'; because: PaymentStatus };

/**
 * What an OrderCreated does. `existing` is the order's payment status if it has one;
 * `random` is a number in [0, 1) compared with `failureRate` to simulate gateway failures.
 */
export function decideCharge(
  existing: PaymentStatus | undefined,
  amountMinor: number,
  gateway: { failureRate: number; random: number },
): ChargeDecision {
  if (existing) return { action: 'none', because: existing };
  if (amountMinor < MINIMUM_CHARGE_MINOR) return { action: 'fail', reason: 'declined' };
  if (gateway.random < gateway.failureRate) return { action: 'fail', reason: 'simulated' };
  return { action: 'charge' };
}

export type RefundDecision = { action: 'refund' } | { action: 'none'; because: PaymentStatus | 'no payment' };

/**
 * What an OrderCancelled or a PaymentRefundRequested does to the order's payment: only a
 * completed charge is refunded, so whichever trigger comes second finds REFUNDED and does nothing.
 */
export function decideRefund(existing: PaymentStatus | undefined): RefundDecision {
  if (existing === 'COMPLETED') return { action: 'refund' };
  return { action: 'none', because: existing ?? 'no payment' };
}
