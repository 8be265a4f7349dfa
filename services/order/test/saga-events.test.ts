import { newEvent, type Envelope } from '@checkout-saga/shared';
import { waitFor } from '@checkout-saga/shared/testing';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getJson, orderBody, outboxOf, postOrder, startOrderHarness, type OrderHarness } from './support.ts';

let harness: OrderHarness;

beforeAll(async () => {
  harness = await startOrderHarness('events');
});

afterAll(async () => {
  await harness?.stop();
});

const items = [
  { sku: 'SKU-1', qty: 2 },
  { sku: 'SKU-2', qty: 1 },
];
const money = { amountMinor: 12550, currency: 'EUR' } as const;

interface Saga {
  sagaId: string;
  orderId: string;
}

async function newOrder(): Promise<Saga> {
  const response = await postOrder(harness.url, orderBody());
  expect(response.status).toBe(202);
  return response.body as unknown as Saga;
}

const events = {
  paymentCompleted: (saga: Saga) => newEvent('PaymentCompleted', saga, { paymentId: v7(), items, ...money }),
  paymentFailed: (saga: Saga) => newEvent('PaymentFailed', saga, { reason: 'declined', ...money }),
  inventoryReserved: (saga: Saga) => newEvent('InventoryReserved', saga, { reservationId: v7(), items }),
  inventoryFailed: (saga: Saga) => newEvent('InventoryFailed', saga, { reason: 'out_of_stock', skus: ['SKU-2'] }),
  paymentRefunded: (saga: Saga) => newEvent('PaymentRefunded', saga, { paymentId: v7(), ...money }),
};

async function sagaView(saga: Saga) {
  return (await getJson(`${harness.url}/sagas/${saga.sagaId}`)).body as {
    state: string;
    reason: string | null;
    history: { type: string; eventId: string; fromState: string | null; toState: string; compensation: boolean }[];
  };
}

/** Publishes an event and waits until the saga's history has recorded it. */
async function deliver(saga: Saga, event: Envelope) {
  await harness.publish(event);
  return waitFor(
    async () => {
      const view = await sagaView(saga);
      return view.history.some((entry) => entry.eventId === event.eventId) && view;
    },
    { message: `${event.type} ${event.eventId} recorded in saga ${saga.sagaId}` },
  );
}

async function order(saga: Saga) {
  return (await getJson(`${harness.url}/orders/${saga.orderId}`)).body;
}

describe('driving a saga with events from the broker', () => {
  test('PaymentCompleted then InventoryReserved confirm the order and emit OrderConfirmed', async () => {
    const saga = await newOrder();

    const afterPayment = await deliver(saga, events.paymentCompleted(saga));
    expect(afterPayment.state).toBe('INVENTORY_PENDING');

    const reserved = events.inventoryReserved(saga);
    const confirmed = await deliver(saga, reserved);
    expect(confirmed).toMatchObject({ state: 'CONFIRMED', reason: null });
    expect(confirmed.history.map((entry) => [entry.type, entry.fromState, entry.toState])).toEqual([
      ['OrderCreated', null, 'PAYMENT_PENDING'],
      ['PaymentCompleted', 'PAYMENT_PENDING', 'INVENTORY_PENDING'],
      ['InventoryReserved', 'INVENTORY_PENDING', 'CONFIRMED'],
      ['OrderConfirmed', 'INVENTORY_PENDING', 'CONFIRMED'],
    ]);
    expect(await order(saga)).toMatchObject({ status: 'CONFIRMED', reason: null });

    const outbox = await outboxOf(harness.db, saga.sagaId);
    expect(outbox.map((event) => event.type)).toEqual(['OrderCreated', 'OrderConfirmed']);
    expect(outbox[1]).toMatchObject({ orderId: saga.orderId, payload: { customerEmail: 'ada@example.com', items, ...money } });
    expect(outbox[1]!.eventId).toBe(confirmed.history[3]!.eventId);
    await waitFor(() => harness.published.some((event) => event.eventId === outbox[1]!.eventId), { message: 'OrderConfirmed published' });

    // A duplicate delivery of the same event is recognised by the inbox and changes nothing.
    const duplicatesBefore = await harness.metric('messages_total', { handler: 'order.saga.inventory-reserved', outcome: 'duplicate' });
    await harness.publish(reserved);
    await waitFor(
      async () => (await harness.metric('messages_total', { handler: 'order.saga.inventory-reserved', outcome: 'duplicate' })) > duplicatesBefore,
      { message: 'the duplicate InventoryReserved acknowledged as a duplicate' },
    );
    expect(await sagaView(saga)).toEqual(confirmed);
    expect(await outboxOf(harness.db, saga.sagaId)).toEqual(outbox);

    // A late event (a new one, for a finished saga) is recorded and changes nothing else.
    const lateFailure = events.paymentFailed(saga);
    const afterLate = await deliver(saga, lateFailure);
    expect(afterLate.state).toBe('CONFIRMED');
    expect(afterLate.history.at(-1)).toMatchObject({ type: 'PaymentFailed', eventId: lateFailure.eventId, fromState: 'CONFIRMED', toState: 'CONFIRMED', compensation: false });
    expect(afterLate.history).toHaveLength(5);
    expect(await outboxOf(harness.db, saga.sagaId)).toEqual(outbox);
    expect(await order(saga)).toMatchObject({ status: 'CONFIRMED', reason: null });
  });

  test('InventoryReserved before its PaymentCompleted confirms; the late PaymentCompleted changes nothing', async () => {
    const saga = await newOrder();
    const confirmed = await deliver(saga, events.inventoryReserved(saga));
    expect(confirmed.state).toBe('CONFIRMED');

    const late = await deliver(saga, events.paymentCompleted(saga));
    expect(late.state).toBe('CONFIRMED');
    expect(late.history.map((entry) => entry.type)).toEqual(['OrderCreated', 'InventoryReserved', 'OrderConfirmed', 'PaymentCompleted']);
    expect((await outboxOf(harness.db, saga.sagaId)).map((event) => event.type)).toEqual(['OrderCreated', 'OrderConfirmed']);
  });

  test('PaymentFailed cancels with reason payment_failed', async () => {
    const saga = await newOrder();
    const cancelled = await deliver(saga, events.paymentFailed(saga));
    expect(cancelled).toMatchObject({ state: 'CANCELLED', reason: 'payment_failed' });
    expect(await order(saga)).toMatchObject({ status: 'CANCELLED', reason: 'payment_failed' });
    const outbox = await outboxOf(harness.db, saga.sagaId);
    expect(outbox.map((event) => event.type)).toEqual(['OrderCreated', 'OrderCancelled']);
    expect(outbox[1]!.payload).toEqual({ reason: 'payment_failed', customerEmail: 'ada@example.com', items, ...money });
  });

  test('InventoryFailed asks for a refund; PaymentRefunded then cancels with reason inventory_failed', async () => {
    const saga = await newOrder();
    await deliver(saga, events.paymentCompleted(saga));

    const refunding = await deliver(saga, events.inventoryFailed(saga));
    expect(refunding.state).toBe('REFUND_PENDING');
    expect(await order(saga)).toMatchObject({ status: 'PENDING', reason: null });
    let outbox = await outboxOf(harness.db, saga.sagaId);
    expect(outbox.map((event) => event.type)).toEqual(['OrderCreated', 'PaymentRefundRequested']);
    expect(outbox[1]!.payload).toEqual({ reason: 'inventory_failed' });
    expect(refunding.history.slice(-2).map((entry) => [entry.type, entry.toState, entry.compensation])).toEqual([
      ['InventoryFailed', 'REFUND_PENDING', true],
      ['PaymentRefundRequested', 'REFUND_PENDING', true],
    ]);

    const cancelled = await deliver(saga, events.paymentRefunded(saga));
    expect(cancelled).toMatchObject({ state: 'CANCELLED', reason: 'inventory_failed' });
    expect(await order(saga)).toMatchObject({ status: 'CANCELLED', reason: 'inventory_failed' });
    outbox = await outboxOf(harness.db, saga.sagaId);
    expect(outbox.map((event) => event.type)).toEqual(['OrderCreated', 'PaymentRefundRequested', 'OrderCancelled']);
    expect(outbox[2]!.payload).toEqual({ reason: 'inventory_failed', customerEmail: 'ada@example.com', items, ...money });
  });

  test('many events for many sagas at once each apply exactly once', async () => {
    const sagas = await Promise.all(Array.from({ length: 20 }, () => newOrder()));
    const published = sagas.flatMap((saga) => {
      const completed = events.paymentCompleted(saga);
      const reserved = events.inventoryReserved(saga);
      return [completed, reserved, completed, reserved]; // every one delivered twice, in either order
    });
    await Promise.all(published.map((event) => harness.publish(event)));
    await waitFor(
      async () => {
        const states = await harness.db.selectFrom('sagas').select('state').where('saga_id', 'in', sagas.map((saga) => saga.sagaId)).execute();
        return states.every((row) => row.state === 'CONFIRMED');
      },
      { message: 'every saga confirmed' },
    );
    for (const saga of sagas) {
      const outbox = await outboxOf(harness.db, saga.sagaId);
      expect(outbox.map((event) => event.type)).toEqual(['OrderCreated', 'OrderConfirmed']);
    }
    // Each history ends up with both inbound events once and one OrderConfirmed, whichever came first.
    await waitFor(
      async () => {
        const rows = await harness.db.selectFrom('saga_history').select(['saga_id', 'type']).where('saga_id', 'in', sagas.map((saga) => saga.sagaId)).execute();
        return rows.length === sagas.length * 4 && rows;
      },
      { message: 'every event recorded once' },
    );
  });
});

describe('events the service cannot apply', () => {
  test('an event for an unknown saga is dead-lettered at once and leaves nothing behind', async () => {
    const stranger = { sagaId: v7(), orderId: v7() };
    const before = await harness.db.selectFrom('saga_history').select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
    const labels = { handler: 'order.saga.payment-completed', outcome: 'dead_lettered' };
    const deadLetteredBefore = await harness.metric('messages_total', labels);
    const event = events.paymentCompleted(stranger);
    await harness.publish(event);
    await waitFor(async () => (await harness.metric('messages_total', labels)) > deadLetteredBefore, {
      message: 'the event for an unknown saga dead-lettered',
    });
    expect(await harness.metric('messages_total', { handler: 'order.saga.payment-completed', outcome: 'retried' })).toBe(0);
    const after = await harness.db.selectFrom('saga_history').select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
    expect(after.count).toBe(before.count);
    const inbox = await harness.db.selectFrom('processed_events').selectAll().where('handler', '=', 'order.saga.payment-completed').execute();
    expect(inbox.map((row) => row.event_id)).not.toContain(event.eventId);
  });
});
