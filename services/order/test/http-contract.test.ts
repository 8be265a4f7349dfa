import { waitFor } from '@checkout-saga/shared/testing';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getJson, orderBody, outboxOf, postOrder, rowCounts, startOrderHarness, type OrderHarness } from './support.ts';

let harness: OrderHarness;

beforeAll(async () => {
  harness = await startOrderHarness('http');
});

afterAll(async () => {
  await harness?.stop();
});

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('POST /orders', () => {
  test('accepts an order: 202, and order, saga, history and one OrderCreated outbox row in one go', async () => {
    const before = await rowCounts(harness.db);
    const response = await postOrder(harness.url, orderBody());

    expect(response.status).toBe(202);
    expect(response.body).toEqual({ status: 'accepted', orderId: expect.stringMatching(uuid), sagaId: expect.stringMatching(uuid), message: expect.any(String) });
    expect(response.headers.get('location')).toBe(`/orders/${response.body.orderId}`);
    const { orderId, sagaId } = response.body as { orderId: string; sagaId: string };

    const after = await rowCounts(harness.db);
    expect(after).toEqual({ ...before, orders: before.orders! + 1, sagas: before.sagas! + 1, history: before.history! + 1, outbox: before.outbox! + 1 });

    const order = await harness.db.selectFrom('orders').selectAll().where('order_id', '=', orderId).executeTakeFirstOrThrow();
    expect(order).toMatchObject({
      saga_id: sagaId,
      customer_id: 'customer-1',
      customer_email: 'ada@example.com',
      items: [
        { sku: 'SKU-1', qty: 2 },
        { sku: 'SKU-2', qty: 1 },
      ],
      amount_minor: 12550,
      currency: 'EUR',
      status: 'PENDING',
      reason: null,
    });
    const saga = await harness.db.selectFrom('sagas').selectAll().where('saga_id', '=', sagaId).executeTakeFirstOrThrow();
    expect(saga).toMatchObject({ order_id: orderId, state: 'PAYMENT_PENDING', reason: null });
    const deadline = saga.timeout_at.getTime() - saga.created_at.getTime();
    expect(deadline).toBeGreaterThan(89_000);
    expect(deadline).toBeLessThanOrEqual(90_000);

    const [created] = await outboxOf(harness.db, sagaId);
    expect(created).toMatchObject({
      type: 'OrderCreated',
      sagaId,
      orderId,
      version: 1,
      payload: {
        customerId: 'customer-1',
        customerEmail: 'ada@example.com',
        items: [
          { sku: 'SKU-1', qty: 2 },
          { sku: 'SKU-2', qty: 1 },
        ],
        amountMinor: 12550,
        currency: 'EUR',
      },
    });
    const history = await harness.db.selectFrom('saga_history').selectAll().where('saga_id', '=', sagaId).execute();
    expect(history).toEqual([
      expect.objectContaining({ event_id: created!.eventId, type: 'OrderCreated', from_state: null, to_state: 'PAYMENT_PENDING', compensation: false }),
    ]);

    // The relay publishes it: the tap queue sees it.
    await waitFor(() => harness.published.some((event) => event.eventId === created!.eventId), { message: 'OrderCreated published' });
  });

  test('reads an amount given as a number or a string the same way, and defaults the currency to USD', async () => {
    const asNumber = await postOrder(harness.url, orderBody({ amount: 19.9, currency: undefined, customerId: undefined }));
    const asString = await postOrder(harness.url, orderBody({ amount: '19.90', currency: undefined }));
    for (const response of [asNumber, asString]) {
      expect(response.status).toBe(202);
      const order = await getJson(`${harness.url}/orders/${response.body.orderId}`);
      expect(order.body).toMatchObject({ amount: '19.90', currency: 'USD' });
    }
    const numberOrder = await getJson(`${harness.url}/orders/${asNumber.body.orderId}`);
    expect(numberOrder.body.customerId).toBeNull();
  });

  describe('Idempotency-Key', () => {
    test('a retry with the same key and body returns the first response and creates nothing', async () => {
      const key = `retry-${v7()}`;
      const first = await postOrder(harness.url, orderBody({ amount: 42 }), { 'idempotency-key': key });
      expect(first.status).toBe(202);
      const before = await rowCounts(harness.db);

      // The same request after normalisation: 42 and "42.00" are one amount.
      const retry = await postOrder(harness.url, orderBody({ amount: '42.00' }), { 'idempotency-key': key });
      expect(retry.status).toBe(202);
      expect(retry.body).toEqual(first.body);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(await rowCounts(harness.db)).toEqual(before);
    });

    test('the same key with a different body is refused with 409 and writes nothing', async () => {
      const key = `reuse-${v7()}`;
      expect((await postOrder(harness.url, orderBody(), { 'idempotency-key': key })).status).toBe(202);
      const before = await rowCounts(harness.db);

      const reused = await postOrder(harness.url, orderBody({ amount: '125.51' }), { 'idempotency-key': key });
      expect(reused.status).toBe(409);
      expect(reused.body).toMatchObject({ error: 'idempotency_key_reused', message: expect.any(String) });
      expect(await rowCounts(harness.db)).toEqual(before);
    });

    test('concurrent requests with one key create one order and all get its response', async () => {
      const key = `race-${v7()}`;
      const before = await rowCounts(harness.db);
      const responses = await Promise.all(Array.from({ length: 12 }, () => postOrder(harness.url, orderBody(), { 'idempotency-key': key })));

      expect(responses.map((response) => response.status)).toEqual(responses.map(() => 202));
      expect(new Set(responses.map((response) => response.body.orderId)).size).toBe(1);
      const after = await rowCounts(harness.db);
      expect(after.orders).toBe(before.orders! + 1);
      expect(after.outbox).toBe(before.outbox! + 1);
      expect(after.idempotency_keys).toBe(before.idempotency_keys! + 1);
    });
  });

  describe('bad input is a 400 that names the field, and writes nothing', () => {
    const cases: [string, unknown, RegExp, Record<string, string>?][] = [
      ['malformed JSON', '{"customerEmail": "ada@example.com", "items": [', /JSON/i],
      ['a body that is not an object', '[1, 2]', /^body /],
      ['no customerEmail', orderBody({ customerEmail: undefined }), /^body\.customerEmail is required/],
      ['no items', orderBody({ items: undefined }), /^body\.items is required/],
      ['no amount', orderBody({ amount: undefined }), /^body\.amount is required/],
      ['qty 0', orderBody({ items: [{ sku: 'SKU-1', qty: 0 }] }), /^body\.items\.0\.qty must be >= 1/],
      ['qty 1001', orderBody({ items: [{ sku: 'SKU-1', qty: 1001 }] }), /^body\.items\.0\.qty /],
      ['qty 1.5', orderBody({ items: [{ sku: 'SKU-1', qty: 1.5 }] }), /^body\.items\.0\.qty /],
      ['qty as a string', orderBody({ items: [{ sku: 'SKU-1', qty: '2' }] }), /^body\.items\.0\.qty /],
      ['no items at all', orderBody({ items: [] }), /^body\.items /],
      ['51 items', orderBody({ items: Array.from({ length: 51 }, (_, i) => ({ sku: `S${i}`, qty: 1 })) }), /^body\.items /],
      ['an unknown property on an item', orderBody({ items: [{ sku: 'SKU-1', qty: 1, price: 3 }] }), /^body\.items\.0\.price is not allowed/],
      ['a bad sku', orderBody({ items: [{ sku: ' bad sku', qty: 1 }] }), /^body\.items\.0\.sku /],
      ['amount -1', orderBody({ amount: -1 }), /^body\.amount must not be negative/],
      ['amount "-1.00"', orderBody({ amount: '-1.00' }), /^body\.amount must not be negative/],
      ['amount 1.234', orderBody({ amount: 1.234 }), /^body\.amount must have at most two decimal places/],
      ['amount "1.234"', orderBody({ amount: '1.234' }), /^body\.amount must have at most two decimal places/],
      ['amount "1e3"', orderBody({ amount: '1e3' }), /^body\.amount must be a plain decimal/],
      ['amount 1e21', orderBody({ amount: 1e21 }), /^body\.amount /],
      ['amount over 1e9', orderBody({ amount: '1000000000.01' }), /^body\.amount must not exceed/],
      ['amount "NaN"', orderBody({ amount: 'NaN' }), /^body\.amount /],
      ['amount null', orderBody({ amount: null }), /^body\.amount /],
      ['amount true', orderBody({ amount: true }), /^body\.amount /],
      ['amount ""', orderBody({ amount: '' }), /^body\.amount /],
      ['an unknown currency', orderBody({ currency: 'XYZ' }), /^body\.currency must be one of USD, EUR/],
      ['an invalid email', orderBody({ customerEmail: 'not an email' }), /^body\.customerEmail /],
      ['an extra property', orderBody({ coupon: 'FREE' }), /^body\.coupon is not allowed/],
      ['an empty customerId', orderBody({ customerId: '' }), /^body\.customerId /],
      ['an Idempotency-Key over 200 characters', orderBody(), /^headers\.idempotency-key /, { 'idempotency-key': 'k'.repeat(201) }],
    ];

    test.each(cases)('%s', async (_name, body, message, headers) => {
      const before = await rowCounts(harness.db);
      const response = await postOrder(harness.url, body, headers);
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: expect.stringMatching(/^(validation_failed|invalid_json)$/), message: expect.stringMatching(message) });
      expect(await rowCounts(harness.db)).toEqual(before);
    });

    test('a body over 1 MiB is a 413', async () => {
      const before = await rowCounts(harness.db);
      const response = await postOrder(harness.url, orderBody({ customerId: 'x'.repeat(1024 * 1024 + 1) }));
      expect(response.status).toBe(413);
      expect(response.body).toMatchObject({ error: 'payload_too_large' });
      expect(await rowCounts(harness.db)).toEqual(before);
    });
  });
});

describe('GET /orders/:orderId and /sagas/:sagaId', () => {
  test('show the order with its amount as a two-decimal string, and the saga with its history', async () => {
    const accepted = await postOrder(harness.url, orderBody({ amount: 7 }));
    const { orderId, sagaId } = accepted.body as { orderId: string; sagaId: string };

    const order = await getJson(`${harness.url}/orders/${orderId}`);
    expect(order.status).toBe(200);
    expect(order.body).toEqual({
      orderId,
      sagaId,
      status: 'PENDING',
      reason: null,
      customerId: 'customer-1',
      customerEmail: 'ada@example.com',
      items: [
        { sku: 'SKU-1', qty: 2 },
        { sku: 'SKU-2', qty: 1 },
      ],
      amount: '7.00',
      currency: 'EUR',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });

    const saga = await getJson(`${harness.url}/sagas/${sagaId}`);
    expect(saga.status).toBe(200);
    expect(saga.body).toEqual({
      sagaId,
      orderId,
      state: 'PAYMENT_PENDING',
      reason: null,
      timeoutAt: expect.any(String),
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      history: [{ type: 'OrderCreated', eventId: expect.stringMatching(uuid), at: expect.any(String), fromState: null, toState: 'PAYMENT_PENDING', compensation: false }],
    });
  });

  test('an id in capitals finds the same order and saga (UUIDs are case-insensitive), shown in lower case', async () => {
    const accepted = await postOrder(harness.url, orderBody({ amount: 3 }));
    const { orderId, sagaId } = accepted.body as { orderId: string; sagaId: string };
    const order = await getJson(`${harness.url}/orders/${orderId.toUpperCase()}`);
    expect(order.status).toBe(200);
    expect(order.body).toMatchObject({ orderId, sagaId });
    const saga = await getJson(`${harness.url}/sagas/${sagaId.toUpperCase()}`);
    expect(saga.status).toBe(200);
    expect(saga.body).toMatchObject({ sagaId, orderId, history: [{ type: 'OrderCreated' }] });
  });

  test('an unknown id is a 404, a malformed one a 400 naming the parameter', async () => {
    for (const path of ['orders', 'sagas']) {
      const unknown = await getJson(`${harness.url}/${path}/${v7()}`);
      expect(unknown.status).toBe(404);
      expect(unknown.body).toMatchObject({ error: 'not_found', message: expect.any(String) });

      const malformed = await getJson(`${harness.url}/${path}/not-a-uuid`);
      expect(malformed.status).toBe(400);
      expect(malformed.body).toMatchObject({ error: 'validation_failed', message: expect.stringMatching(/^params\.(orderId|sagaId) /) });
    }
  });
});

describe('GET /orders?status=&limit=', () => {
  test('lists newest first, filtered by status, at most limit', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await postOrder(harness.url, orderBody())).body.orderId as string);

    const listed = await getJson(`${harness.url}/orders?status=PENDING&limit=2`);
    expect(listed.status).toBe(200);
    expect(listed.body.orders.map((order: { orderId: string }) => order.orderId)).toEqual([ids[2], ids[1]]);
    expect(listed.body.orders[0]).toMatchObject({ status: 'PENDING', amount: '125.50', currency: 'EUR' });

    const none = await getJson(`${harness.url}/orders?status=CONFIRMED`);
    expect(none.body.orders).toEqual([]);

    const all = await getJson(`${harness.url}/orders`);
    expect(all.body.orders.length).toBeGreaterThanOrEqual(3);
    expect(all.body.orders.length).toBeLessThanOrEqual(50);
  });

  test('rejects an unknown status and a limit outside 1..500', async () => {
    for (const query of ['status=SHIPPED', 'limit=0', 'limit=501', 'limit=abc']) {
      const response = await getJson(`${harness.url}/orders?${query}`);
      expect(response.status, query).toBe(400);
      expect(response.body.message, query).toMatch(/^querystring\.(status|limit) /);
    }
  });
});
