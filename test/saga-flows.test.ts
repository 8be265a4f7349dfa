import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newEvent, traceIdOf } from '@checkout-saga/shared/internal';
import { sql } from 'kysely';
import { startSmtpSink, waitFor, type SmtpSink } from '@checkout-saga/shared/testing';
import { v7 } from 'uuid';
import { getJson, order, placeOrder, settledOrder } from './support/client.ts';
import { invariantViolations, stockLevels, type Stock } from './support/invariants.ts';
import { deadLetters, messageCounts, publishEvents } from './support/broker.ts';
import { startSystem, type System } from './support/system.ts';

/*
 * Every flow of docs/design.md, end to end: the four services running, real PostgreSQL and
 * RabbitMQ, each case checked against the invariants in the services' own databases.
 */

const CALLER_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

let system: System;
let smtp: SmtpSink;
let initialStock: Stock;

beforeAll(async () => {
  smtp = await startSmtpSink();
  system = await startSystem('flows', { notification: { SMTP_URL: smtp.url } });
  initialStock = await stockLevels(system);
});

afterAll(async () => {
  await system?.stop();
  await smtp?.close();
});

const paymentOf = (orderId: string) => system.paymentDb.selectFrom('payments').selectAll().where('order_id', '=', orderId).executeTakeFirst();

describe('a checkout', () => {
  test('happy path: charged once, stock taken once, confirmed, one email', async () => {
    const before = await stockLevels(system);
    const { orderId, sagaId } = await placeOrder(system, order({ items: [{ sku: 'KEYBOARD', qty: 2 }], amount: '125.50', customerEmail: 'happy@example.com' }), {
      traceparent: `00-${CALLER_TRACE_ID}-00f067aa0ba902b7-01`,
    });

    const settled = await settledOrder(system, orderId);
    expect(settled).toMatchObject({ status: 'CONFIRMED', reason: null, amount: '125.50' });
    expect(await paymentOf(orderId)).toMatchObject({ status: 'COMPLETED', amount_minor: 12550 });
    expect((await stockLevels(system)).get('KEYBOARD')).toBe(before.get('KEYBOARD')! - 2);

    const { body: saga } = await getJson<{ state: string; history: { type: string }[] }>(`${system.orderUrl}/sagas/${sagaId}`);
    expect(saga.state).toBe('CONFIRMED');
    expect(steps(saga.history)).toEqual(['OrderCreated', ['InventoryReserved', 'PaymentCompleted'], 'OrderConfirmed']);

    // One trace, continued from the caller's traceparent, runs through every event of the saga in every service.
    const traces = await Promise.all(
      [system.orderDb, system.paymentDb, system.inventoryDb].map((db) =>
        sql<{ trace: string }>`select headers->>'traceparent' as trace from outbox where envelope->>'orderId' = ${orderId}`.execute(db),
      ),
    );
    const traceIds = traces.flatMap(({ rows }) => rows.map((row) => traceIdOf(row.trace)));
    expect(traceIds.length).toBeGreaterThanOrEqual(4);
    expect(new Set(traceIds)).toEqual(new Set([CALLER_TRACE_ID]));

    const mail = await waitFor(() => smtp.received.find((message) => message.to.includes('happy@example.com')), { message: 'confirmation email' });
    expect(mail.subject.toLowerCase()).toContain('confirmed');
  });

  test('payment declined (amount under 1.00): cancelled, nothing charged, stock untouched, email says why', async () => {
    const before = await stockLevels(system);
    const { orderId } = await placeOrder(system, order({ amount: '0.50', customerEmail: 'declined@example.com' }));
    expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CANCELLED', reason: 'payment_failed' });
    expect(await paymentOf(orderId)).toMatchObject({ status: 'FAILED' });
    expect(await stockLevels(system)).toEqual(before);
    const mail = await waitFor(() => smtp.received.find((message) => message.to.includes('declined@example.com')), { message: 'cancellation email' });
    expect(mail.subject.toLowerCase()).toContain('cancelled');
    expect(`${mail.subject} ${mail.body}`.toLowerCase()).toContain('payment');
  });

  test('out of stock: charge refunded, then cancelled with reason inventory_failed', async () => {
    const { orderId, sagaId } = await placeOrder(system, order({ items: [{ sku: 'LIMITED-EDITION', qty: 6 }] }));
    expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CANCELLED', reason: 'inventory_failed' });
    expect(await paymentOf(orderId)).toMatchObject({ status: 'REFUNDED' });
    const { body: saga } = await getJson<{ history: { type: string }[] }>(`${system.orderUrl}/sagas/${sagaId}`);
    expect(steps(saga.history)).toEqual([
      'OrderCreated', ['InventoryFailed', 'PaymentCompleted'], 'PaymentRefundRequested', 'PaymentRefunded', 'OrderCancelled',
    ]);
  });

  test('unknown sku: refunded and cancelled', async () => {
    const { orderId } = await placeOrder(system, order({ items: [{ sku: 'NO-SUCH-THING', qty: 1 }] }));
    expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CANCELLED', reason: 'inventory_failed' });
    expect(await paymentOf(orderId)).toMatchObject({ status: 'REFUNDED' });
  });

  test('multi-line order with one short line reserves nothing at all', async () => {
    const before = await stockLevels(system);
    const { orderId } = await placeOrder(system, order({ items: [{ sku: 'MOUSE', qty: 1 }, { sku: 'LIMITED-EDITION', qty: 50 }] }));
    expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CANCELLED', reason: 'inventory_failed' });
    expect(await stockLevels(system)).toEqual(before);
  });

  test('OrderCancelled that reaches payment and inventory before the events it cancels: nothing charged, nothing reserved', async () => {
    const saga = { sagaId: v7(), orderId: v7() };
    const items = [{ sku: 'MOUSE', qty: 1 }];
    const before = await stockLevels(system);
    const money = { amountMinor: 2500, currency: 'USD' as const };
    await publishEvents(system, [newEvent('OrderCancelled', saga, { reason: 'timeout', customerEmail: 'early@example.com', items, ...money })]);
    await waitFor(async () => (await paymentOf(saga.orderId))?.status === 'SKIPPED', { message: 'payment to record the early cancellation' });
    await waitFor(
      async () => (await system.inventoryDb.selectFrom('reservations').select('status').where('order_id', '=', saga.orderId).executeTakeFirst())?.status,
      { message: 'inventory to record the early cancellation' },
    );

    await publishEvents(system, [
      newEvent('OrderCreated', saga, { customerId: null, customerEmail: 'early@example.com', items, ...money }),
      newEvent('PaymentCompleted', saga, { paymentId: v7(), items, ...money }),
    ]);
    // Both late events are consumed (the inbox records them) and change nothing.
    await waitFor(async () => {
      const seenByPayment = await system.paymentDb.selectFrom('processed_events').select('event_id').execute();
      const seenByInventory = await system.inventoryDb.selectFrom('processed_events').select('event_id').execute();
      return seenByPayment.length > 0 && seenByInventory.length > 0 && (await unconsumed()) === 0;
    }, { message: 'late events consumed' });
    expect(await paymentOf(saga.orderId)).toMatchObject({ status: 'SKIPPED' });
    expect(await stockLevels(system)).toEqual(before);
  });

  test('50 concurrent orders for a product with stock 5: exactly 5 confirmed, stock 0, every other order refunded or never charged', async () => {
    await fetch(`${system.inventoryUrl}/products/LAST-FIVE`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Last five', price: '10.00', stock: 5 }),
    });
    const placed = await Promise.all(
      Array.from({ length: 50 }, (_, index) => placeOrder(system, order({ items: [{ sku: 'LAST-FIVE', qty: 1 }], customerEmail: `rush${index}@example.com` }))),
    );
    const settled = await Promise.all(placed.map(({ orderId }) => settledOrder(system, orderId, 60_000)));
    expect(settled.filter((view) => view.status === 'CONFIRMED')).toHaveLength(5);
    expect(settled.filter((view) => view.status === 'CANCELLED').every((view) => view.reason === 'inventory_failed')).toBe(true);
    expect((await stockLevels(system)).get('LAST-FIVE')).toBe(0);
    for (const { orderId } of placed) {
      const payment = await paymentOf(orderId);
      const view = settled.find((candidate) => candidate.orderId === orderId)!;
      expect(payment?.status).toBe(view.status === 'CONFIRMED' ? 'COMPLETED' : 'REFUNDED');
    }
  });

  test('every invariant holds over every order placed above, and nothing was dead-lettered', async () => {
    const stock = new Map(initialStock);
    stock.set('LAST-FIVE', 5);
    await waitFor(async () => (await invariantViolations(system, stock)).length === 0, { message: 'invariants to hold', timeoutMs: 20_000 }).catch(
      async () => expect(await invariantViolations(system, stock)).toEqual([]),
    );
    // The one dead letter is the PaymentCompleted the early-cancellation case made up: it names a
    // saga the order service never created, which no retry can fix.
    const dead = await deadLettersNow();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ service: 'order', type: 'PaymentCompleted' });
    expect(dead[0]!.reason).toContain('no saga');
  });
});

/**
 * The saga's history as steps. Payment publishes PaymentCompleted to order and inventory at
 * once, so order may hear inventory's answer before payment's own event: those two form one
 * step whose order is not fixed (compared sorted).
 */
function steps(history: { type: string }[]): (string | string[])[] {
  const types = history.map((entry) => entry.type);
  const paid = types.indexOf('PaymentCompleted');
  const answered = types.findIndex((type) => type === 'InventoryReserved' || type === 'InventoryFailed');
  if (paid < 0 || answered < 0 || Math.abs(paid - answered) !== 1) return types;
  const first = Math.min(paid, answered);
  return [...types.slice(0, first), [types[paid]!, types[answered]!].sort(), ...types.slice(first + 2)];
}

async function unconsumed(): Promise<number> {
  return messageCounts(system, ['payment', 'inventory']);
}

async function deadLettersNow() {
  return deadLetters(system);
}
