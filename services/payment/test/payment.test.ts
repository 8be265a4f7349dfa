import { newEvent, type Envelope, type EventPayload } from '@checkout-saga/shared';
import { waitFor } from '@checkout-saga/shared/testing';
import { sql } from 'kysely';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { applied, duplicates, emitted, startPayment, type PaymentHarness } from './support.ts';

const items = [{ sku: 'KEYBOARD', qty: 2 }, { sku: 'MOUSE', qty: 1 }];
const newSaga = () => ({ sagaId: v7(), orderId: v7() });
const orderCreated = (saga = newSaga(), amountMinor = 12_550) =>
  newEvent('OrderCreated', saga, { customerId: 'c-1', customerEmail: 'buyer@example.com', items, amountMinor, currency: 'EUR' });
const orderCancelled = (saga: { sagaId: string; orderId: string }, reason: EventPayload<'OrderCancelled'>['reason'] = 'timeout', amountMinor = 12_550) =>
  newEvent('OrderCancelled', saga, { reason, customerEmail: 'buyer@example.com', items, amountMinor, currency: 'EUR' });
const refundRequested = (saga: { sagaId: string; orderId: string }) => newEvent('PaymentRefundRequested', saga, { reason: 'inventory_failed' });
const types = (events: Envelope[]) => events.map((event) => event.type);

describe('payment service', () => {
  let payment: PaymentHarness;
  const paymentOf = (orderId: string) => payment.db.selectFrom('payments').selectAll().where('order_id', '=', orderId).executeTakeFirst();
  const settled = (orderId: string, status: string) =>
    waitFor(async () => ((await paymentOf(orderId))?.status === status ? paymentOf(orderId) : undefined), { message: `payment of ${orderId} to be ${status}` });

  beforeAll(async () => {
    payment = await startPayment('main');
  });
  afterAll(async () => {
    await payment?.stop();
  });

  test('OrderCreated charges the order once and publishes PaymentCompleted carrying its items', async () => {
    const created = orderCreated();
    await payment.publish(created);
    const row = await settled(created.orderId, 'COMPLETED');
    expect(row).toMatchObject({ saga_id: created.sagaId, amount_minor: 12_550, currency: 'EUR', failure_reason: null, refunded_at: null });
    const events = await emitted(payment.db, created.orderId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'PaymentCompleted',
      sagaId: created.sagaId,
      orderId: created.orderId,
      payload: { paymentId: row!.payment_id, items, amountMinor: 12_550, currency: 'EUR' },
    });
  });

  test('an amount under 1.00 is declined (99 minor units), 1.00 itself is charged; a later OrderCancelled refunds nothing', async () => {
    const under = orderCreated(newSaga(), 99);
    const exactly = orderCreated(newSaga(), 100);
    await payment.publish(under, exactly);
    expect(await settled(under.orderId, 'FAILED')).toMatchObject({ failure_reason: 'declined', amount_minor: 99 });
    await settled(exactly.orderId, 'COMPLETED');
    expect(await emitted(payment.db, under.orderId)).toMatchObject([{ type: 'PaymentFailed', payload: { reason: 'declined', amountMinor: 99, currency: 'EUR' } }]);

    const cancelled = orderCancelled(under, 'payment_failed', 99);
    await payment.publish(cancelled);
    await applied(payment.db, cancelled.eventId, 'payment.refund-on-cancel');
    expect(await paymentOf(under.orderId)).toMatchObject({ status: 'FAILED', refunded_at: null });
    expect(types(await emitted(payment.db, under.orderId))).toEqual(['PaymentFailed']);
  });

  test('PaymentRefundRequested refunds a completed charge and publishes PaymentRefunded', async () => {
    const created = orderCreated();
    await payment.publish(created);
    const charged = await settled(created.orderId, 'COMPLETED');
    await payment.publish(refundRequested(created));
    const refunded = await settled(created.orderId, 'REFUNDED');
    expect(refunded!.refunded_at).toBeInstanceOf(Date);
    const events = await emitted(payment.db, created.orderId);
    expect(types(events)).toEqual(['PaymentCompleted', 'PaymentRefunded']);
    expect(events[1]!.payload).toEqual({ paymentId: charged!.payment_id, amountMinor: 12_550, currency: 'EUR' });
  });

  test('OrderCancelled before OrderCreated records SKIPPED, and the late OrderCreated charges nothing and emits nothing', async () => {
    const saga = newSaga();
    const cancelled = orderCancelled(saga, 'timeout');
    await payment.publish(cancelled);
    expect(await settled(saga.orderId, 'SKIPPED')).toMatchObject({ payment_id: null, amount_minor: 12_550, currency: 'EUR', refunded_at: null });

    const late = orderCreated(saga);
    await payment.publish(late);
    await applied(payment.db, late.eventId, 'payment.charge');
    expect(await paymentOf(saga.orderId)).toMatchObject({ status: 'SKIPPED', payment_id: null });
    expect(await emitted(payment.db, saga.orderId)).toEqual([]);
  });

  test('a duplicate delivery changes nothing: one charge, one refund, one event each', async () => {
    const created = orderCreated();
    const before = await duplicates(payment.url, 'payment.charge');
    await payment.publish(created, created);
    await waitFor(async () => (await duplicates(payment.url, 'payment.charge')) === before + 1, { message: 'the second OrderCreated to be seen as a duplicate' });
    await settled(created.orderId, 'COMPLETED');

    const cancelled = orderCancelled(created);
    const cancelsBefore = await duplicates(payment.url, 'payment.refund-on-cancel');
    await payment.publish(cancelled, cancelled);
    await waitFor(async () => (await duplicates(payment.url, 'payment.refund-on-cancel')) === cancelsBefore + 1, { message: 'the second OrderCancelled to be seen as a duplicate' });
    await settled(created.orderId, 'REFUNDED');
    expect(types(await emitted(payment.db, created.orderId))).toEqual(['PaymentCompleted', 'PaymentRefunded']);
  });

  test('GET /payments/:orderId: the payment with its amount as a two-decimal string; 404 unknown; 400 malformed id', async () => {
    const created = orderCreated(newSaga(), 12_550);
    await payment.publish(created);
    const row = await settled(created.orderId, 'COMPLETED');
    const response = await fetch(`${payment.url}/payments/${created.orderId}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      orderId: created.orderId,
      status: 'COMPLETED',
      amount: '125.50',
      currency: 'EUR',
      createdAt: row!.created_at.toISOString(),
      refundedAt: null,
    });

    await payment.publish(refundRequested(created));
    const refunded = await settled(created.orderId, 'REFUNDED');
    expect(await (await fetch(`${payment.url}/payments/${created.orderId}`)).json()).toMatchObject({
      status: 'REFUNDED',
      amount: '125.50',
      refundedAt: refunded!.refunded_at!.toISOString(),
    });

    const unknown = await fetch(`${payment.url}/payments/${v7()}`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: 'not_found' });

    const malformed = await fetch(`${payment.url}/payments/not-a-uuid`);
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error: 'validation_failed', message: expect.stringContaining('orderId') });
  });
});

test('PAYMENT_FAILURE_RATE=1: every charge fails as "simulated"; an amount under 1.00 is still "declined"', async () => {
  const payment = await startPayment('failrate', { env: { PAYMENT_FAILURE_RATE: '1' } });
  try {
    const normal = orderCreated();
    const tiny = orderCreated(newSaga(), 50);
    await payment.publish(normal, tiny);
    const reasons = await waitFor(async () => {
      const rows = await payment.db.selectFrom('payments').select(['order_id', 'status', 'failure_reason']).execute();
      return rows.length === 2 ? new Map(rows.map((row) => [row.order_id, `${row.status}:${row.failure_reason}`])) : undefined;
    }, { message: 'both orders to be decided' });
    expect(reasons.get(normal.orderId)).toBe('FAILED:simulated');
    expect(reasons.get(tiny.orderId)).toBe('FAILED:declined');
    expect(await emitted(payment.db, normal.orderId)).toMatchObject([{ type: 'PaymentFailed', payload: { reason: 'simulated', amountMinor: 12_550 } }]);
  } finally {
    await payment.stop();
  }
});

test('two payment instances, PaymentRefundRequested and OrderCancelled at once: refunded exactly once', async () => {
  const payment = await startPayment('refundrace', { instances: 2 });
  try {
    const orders = Array.from({ length: 10 }, () => orderCreated());
    await payment.publish(...orders);
    await waitFor(async () => {
      const { rows } = await sql<{ count: number }>`select count(*)::int as count from payments where status = 'COMPLETED'`.execute(payment.db);
      return rows[0]!.count === orders.length;
    }, { message: 'every order to be charged' });

    const triggers = orders.flatMap((order) => [refundRequested(order), orderCancelled(order, 'inventory_failed')]);
    await payment.publish(...triggers);
    await Promise.all(triggers.map((event) => applied(payment.db, event.eventId, event.type === 'OrderCancelled' ? 'payment.refund-on-cancel' : 'payment.refund-on-request')));
    for (const order of orders) {
      expect((await payment.db.selectFrom('payments').select('status').where('order_id', '=', order.orderId).executeTakeFirst())?.status).toBe('REFUNDED');
      expect(types(await emitted(payment.db, order.orderId))).toEqual(['PaymentCompleted', 'PaymentRefunded']);
    }
  } finally {
    await payment.stop();
  }
});

test('PAYMENT_PROCESSING_MS: an OrderCancelled that arrives mid-charge waits for the charge, then refunds it', async () => {
  const payment = await startPayment('slow', { env: { PAYMENT_PROCESSING_MS: '2000' } });
  const sessions = (where: ReturnType<typeof sql>) =>
    sql<{ count: number }>`select count(*)::int as count from pg_stat_activity where datname = current_database() and query ilike 'insert into "payments"%' and ${where}`.execute(payment.db);
  try {
    const created = orderCreated();
    await payment.publish(created);
    // The charge has inserted its row and is waiting on the gateway, transaction open.
    await waitFor(async () => (await sessions(sql`state = 'idle in transaction'`)).rows[0]!.count === 1, { message: 'the charge to be in progress' });
    await payment.publish(orderCancelled(created, 'timeout'));
    // The cancellation blocks on the order's row until the charge commits.
    await waitFor(async () => (await sessions(sql`wait_event_type = 'Lock'`)).rows[0]!.count === 1, { message: 'the cancellation to wait for the charge' });
    await waitFor(async () => (await payment.db.selectFrom('payments').select('status').where('order_id', '=', created.orderId).executeTakeFirst())?.status === 'REFUNDED', {
      message: 'the late charge to be refunded',
    });
    expect(types(await emitted(payment.db, created.orderId))).toEqual(['PaymentCompleted', 'PaymentRefunded']);
  } finally {
    await payment.stop();
  }
});
