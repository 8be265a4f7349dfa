/**
 * The order service's saga metrics, which the Grafana dashboard plots: sagas started, sagas
 * finished by outcome and reason, end-to-end duration and per-step time, counted once each
 * when the transition commits.
 */
import { waitFor } from '@checkout-saga/shared/testing';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { order, placeOrder, settledOrder } from './support/client.ts';
import { scrape, valueOf } from './support/prometheus.ts';
import { startSystem, type System } from './support/system.ts';

let system: System;

beforeAll(async () => {
  system = await startSystem('sagametrics');
});

afterAll(async () => {
  await system?.stop();
});

test('a confirmed and a declined order show as two sagas started, one confirmed and one cancelled for payment_failed, with their durations and steps', async () => {
  const confirmed = await placeOrder(system, order(), { 'idempotency-key': 'metrics-1' });
  // The same key again replays the first response: no second saga.
  await placeOrder(system, order(), { 'idempotency-key': 'metrics-1' });
  const declined = await placeOrder(system, order({ amount: '0.50' }));
  expect((await settledOrder(system, confirmed.orderId)).status).toBe('CONFIRMED');
  expect((await settledOrder(system, declined.orderId)).status).toBe('CANCELLED');

  const samples = await waitFor(
    async () => {
      const samples = await scrape(system.orderUrl);
      return valueOf(samples, 'order_sagas_finished_total', { outcome: 'cancelled', reason: 'payment_failed' }) === 1 &&
        valueOf(samples, 'order_sagas_finished_total', { outcome: 'confirmed', reason: 'none' }) === 1
        ? samples
        : undefined;
    },
    { message: 'both sagas to be counted as finished' },
  );
  expect(valueOf(samples, 'order_sagas_started_total')).toBe(2);
  expect(valueOf(samples, 'order_saga_duration_seconds_count', { outcome: 'confirmed', reason: 'none' })).toBe(1);
  expect(valueOf(samples, 'order_saga_duration_seconds_count', { outcome: 'cancelled', reason: 'payment_failed' })).toBe(1);
  expect(valueOf(samples, 'order_saga_duration_seconds_sum', { outcome: 'confirmed', reason: 'none' })).toBeGreaterThan(0);
  for (const transition of ['payment_completed', 'inventory_reserved', 'payment_failed']) {
    expect(valueOf(samples, 'order_saga_step_seconds_count', { transition }), transition).toBe(1);
  }
  // The confirmed saga's two steps add up to no more than its whole duration.
  const steps = ['payment_completed', 'inventory_reserved'].map((transition) => valueOf(samples, 'order_saga_step_seconds_sum', { transition })!);
  expect(steps[0]! + steps[1]!).toBeLessThanOrEqual(valueOf(samples, 'order_saga_duration_seconds_sum', { outcome: 'confirmed', reason: 'none' })! + 0.001);
});
