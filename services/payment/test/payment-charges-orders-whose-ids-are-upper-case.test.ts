/**
 * Some producers write UUIDs in capitals (SQL Server's uniqueidentifier, several Windows
 * tools); RFC 4122 makes them the same ids. An OrderCreated published straight to the
 * exchange with upper-case ids is charged like any other, the same event sent again in lower
 * case is the duplicate, and the ids in a URL find the same row whatever their letter case.
 */
import { newEvent, type Envelope } from '@checkout-saga/shared';
import { waitFor } from '@checkout-saga/shared/testing';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { duplicates, emitted, startPayment, type PaymentHarness } from './support.ts';

let payment: PaymentHarness;
beforeAll(async () => {
  payment = await startPayment('upper-case-ids');
});
afterAll(async () => {
  await payment?.stop();
});

const items = [{ sku: 'KEYBOARD', qty: 1 }];
/** An OrderCreated as a producer writing capitals would send it. */
function shoutedOrderCreated(): Envelope<'OrderCreated'> {
  const event = newEvent('OrderCreated', { sagaId: crypto.randomUUID(), orderId: crypto.randomUUID() }, { customerId: null, customerEmail: 'buyer@example.com', items, amountMinor: 2_500, currency: 'USD' });
  return { ...event, eventId: event.eventId.toUpperCase(), sagaId: event.sagaId.toUpperCase(), orderId: event.orderId.toUpperCase() };
}
const paymentsOf = (orderIds: string[]) => payment.db.selectFrom('payments').select(['order_id', 'status']).where('order_id', 'in', orderIds).execute();

test('a burst of OrderCreated with upper-case ids: every order is charged, none is taken for a duplicate', async () => {
  const events = Array.from({ length: 15 }, shoutedOrderCreated);
  const before = await duplicates(payment.url, 'payment.charge');
  await payment.publish(...events);
  const orderIds = events.map((event) => event.orderId);
  const rows = await waitFor(async () => {
    const found = await paymentsOf(orderIds);
    return found.length === events.length ? found : undefined;
  }, { message: 'a payment for each of the 15 orders' });
  expect(rows.map((row) => row.status)).toEqual(Array(15).fill('COMPLETED'));
  expect(await duplicates(payment.url, 'payment.charge')).toBe(before);
});

test('the same event id sent again in lower case is the duplicate: one charge, one PaymentCompleted, ids in one spelling', async () => {
  const shouted = shoutedOrderCreated();
  await payment.publish(shouted);
  const orderId = shouted.orderId.toLowerCase();
  await waitFor(async () => (await paymentsOf([orderId]))[0]?.status === 'COMPLETED', { message: 'the upper-case OrderCreated to be charged' });

  const before = await duplicates(payment.url, 'payment.charge');
  await payment.publish({ ...shouted, eventId: shouted.eventId.toLowerCase() });
  await waitFor(async () => (await duplicates(payment.url, 'payment.charge')) === before + 1, { message: 'the lower-case copy to be counted a duplicate' });

  expect(await paymentsOf([orderId])).toHaveLength(1);
  const events = await emitted(payment.db, orderId);
  expect(events.map((event) => event.type)).toEqual(['PaymentCompleted']);
  expect(events[0]).toMatchObject({ sagaId: shouted.sagaId.toLowerCase(), orderId });
});

test('GET /payments/:orderId finds the payment whatever the letter case of the id', async () => {
  const shouted = shoutedOrderCreated();
  await payment.publish(shouted);
  const orderId = shouted.orderId.toLowerCase();
  await waitFor(async () => (await paymentsOf([orderId]))[0]?.status === 'COMPLETED', { message: 'the order to be charged' });
  for (const spelling of [orderId, shouted.orderId]) {
    const response = await fetch(`${payment.url}/payments/${spelling}`);
    expect(response.status, spelling).toBe(200);
    expect(await response.json(), spelling).toMatchObject({ orderId, status: 'COMPLETED' });
  }
});
