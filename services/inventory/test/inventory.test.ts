import { newEvent, type Envelope, type OrderLine } from '@checkout-saga/shared';
import { waitFor } from '@checkout-saga/shared/testing';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { seedProducts, type InventoryTables } from '../src/index.ts';
import type { Kysely } from 'kysely';
import { applied, duplicates, emitted, startInventory, type InventoryHarness } from './support.ts';

type Saga = { sagaId: string; orderId: string };
const newSaga = (): Saga => ({ sagaId: v7(), orderId: v7() });
const paymentCompleted = (items: OrderLine[], saga = newSaga()) =>
  newEvent('PaymentCompleted', saga, { paymentId: v7(), items, amountMinor: 5_000, currency: 'USD' });
const orderConfirmed = (saga: Saga, items: OrderLine[]) => newEvent('OrderConfirmed', saga, { customerEmail: 'buyer@example.com', items, amountMinor: 5_000, currency: 'USD' });
const orderCancelled = (saga: Saga, items: OrderLine[]) =>
  newEvent('OrderCancelled', saga, { reason: 'timeout', customerEmail: 'buyer@example.com', items, amountMinor: 5_000, currency: 'USD' });
const types = (events: Envelope[]) => events.map((event) => event.type);

let counter = 0;
/** A product of its own for one test, so tests sharing a database never share stock. */
async function addProduct(db: Kysely<InventoryTables>, stock: number): Promise<string> {
  const sku = `T${++counter}-${v7().slice(-8).toUpperCase()}`;
  await db.insertInto('products').values({ sku, name: `Test product ${sku}`, price_minor: 1_250, stock }).execute();
  return sku;
}
const stockOf = async (db: Kysely<InventoryTables>, sku: string) =>
  (await db.selectFrom('products').select('stock').where('sku', '=', sku).executeTakeFirstOrThrow()).stock;
const reservationOf = (db: Kysely<InventoryTables>, orderId: string) => db.selectFrom('reservations').selectAll().where('order_id', '=', orderId).executeTakeFirst();
const settled = (db: Kysely<InventoryTables>, orderId: string, status: string) =>
  waitFor(async () => ((await reservationOf(db, orderId))?.status === status ? reservationOf(db, orderId) : undefined), {
    message: `reservation of ${orderId} to be ${status}`,
  });

describe('inventory service', () => {
  let inventory: InventoryHarness;
  let db: Kysely<InventoryTables>;

  beforeAll(async () => {
    inventory = await startInventory('main');
    db = inventory.db;
  });
  afterAll(async () => {
    await inventory?.stop();
  });

  test('PaymentCompleted reserves every line (a SKU on two lines counts twice) and publishes InventoryReserved', async () => {
    const [a, b] = [await addProduct(db, 10), await addProduct(db, 4)];
    const items = [{ sku: a, qty: 2 }, { sku: b, qty: 3 }, { sku: a, qty: 1 }];
    const paid = paymentCompleted(items);
    await inventory.publish(paid);
    const reservation = await settled(db, paid.orderId, 'RESERVED');
    expect(reservation).toMatchObject({ saga_id: paid.sagaId, items, reason: null });
    expect([await stockOf(db, a), await stockOf(db, b)]).toEqual([7, 1]);
    expect(await emitted(db, paid.orderId)).toMatchObject([{ type: 'InventoryReserved', payload: { reservationId: reservation!.reservation_id, items } }]);
  });

  test('all or nothing: one short line fails the order as out_of_stock and no stock changes', async () => {
    const [plenty, short] = [await addProduct(db, 10), await addProduct(db, 2)];
    const paid = paymentCompleted([{ sku: plenty, qty: 2 }, { sku: short, qty: 3 }]);
    await inventory.publish(paid);
    expect(await settled(db, paid.orderId, 'FAILED')).toMatchObject({ reason: 'out_of_stock', reservation_id: null });
    expect([await stockOf(db, plenty), await stockOf(db, short)]).toEqual([10, 2]);
    expect(await emitted(db, paid.orderId)).toMatchObject([{ type: 'InventoryFailed', payload: { reason: 'out_of_stock', skus: [short] } }]);
  });

  test('an unknown SKU fails the order as unknown_sku and no stock changes', async () => {
    const known = await addProduct(db, 10);
    const paid = paymentCompleted([{ sku: known, qty: 1 }, { sku: 'NO-SUCH-PRODUCT', qty: 1 }]);
    await inventory.publish(paid);
    expect(await settled(db, paid.orderId, 'FAILED')).toMatchObject({ reason: 'unknown_sku' });
    expect(await stockOf(db, known)).toBe(10);
    expect(await emitted(db, paid.orderId)).toMatchObject([{ type: 'InventoryFailed', payload: { reason: 'unknown_sku', skus: ['NO-SUCH-PRODUCT'] } }]);
  });

  test('OrderConfirmed commits the reservation; the stock stays taken', async () => {
    const sku = await addProduct(db, 10);
    const items = [{ sku, qty: 4 }];
    const paid = paymentCompleted(items);
    await inventory.publish(paid);
    await settled(db, paid.orderId, 'RESERVED');
    await inventory.publish(orderConfirmed(paid, items));
    await settled(db, paid.orderId, 'COMMITTED');
    expect(await stockOf(db, sku)).toBe(6);
    expect(types(await emitted(db, paid.orderId))).toEqual(['InventoryReserved']);
  });

  test('OrderCancelled releases the reservation once: stock restored exactly once, even with a second cancellation and a duplicate', async () => {
    const [a, b] = [await addProduct(db, 10), await addProduct(db, 10)];
    const items = [{ sku: a, qty: 3 }, { sku: b, qty: 1 }];
    const paid = paymentCompleted(items);
    await inventory.publish(paid);
    await settled(db, paid.orderId, 'RESERVED');
    expect([await stockOf(db, a), await stockOf(db, b)]).toEqual([7, 9]);

    const first = orderCancelled(paid, items);
    const second = orderCancelled(paid, items);
    const before = await duplicates(inventory.url, 'inventory.release');
    await inventory.publish(first, second, first);
    await Promise.all([applied(db, first.eventId, 'inventory.release'), applied(db, second.eventId, 'inventory.release')]);
    await waitFor(async () => (await duplicates(inventory.url, 'inventory.release')) === before + 1, { message: 'the repeated cancellation to be a duplicate' });
    expect(await reservationOf(db, paid.orderId)).toMatchObject({ status: 'RELEASED', reason: 'timeout' });
    expect([await stockOf(db, a), await stockOf(db, b)]).toEqual([10, 10]);
  });

  test('cancellation first: recorded as CANCELLED_BEFORE_RESERVE, and the late PaymentCompleted reserves nothing and emits nothing', async () => {
    const sku = await addProduct(db, 10);
    const items = [{ sku, qty: 2 }];
    const saga = newSaga();
    await inventory.publish(orderCancelled(saga, items));
    expect(await settled(db, saga.orderId, 'CANCELLED_BEFORE_RESERVE')).toMatchObject({ reservation_id: null, reason: 'timeout', items });

    const late = paymentCompleted(items, saga);
    await inventory.publish(late);
    await applied(db, late.eventId, 'inventory.reserve');
    expect((await reservationOf(db, saga.orderId))?.status).toBe('CANCELLED_BEFORE_RESERVE');
    expect(await stockOf(db, sku)).toBe(10);
    expect(await emitted(db, saga.orderId)).toEqual([]);
  });

  test('a duplicate PaymentCompleted reserves nothing more', async () => {
    const sku = await addProduct(db, 10);
    const paid = paymentCompleted([{ sku, qty: 3 }]);
    const before = await duplicates(inventory.url, 'inventory.reserve');
    await inventory.publish(paid, paid);
    await waitFor(async () => (await duplicates(inventory.url, 'inventory.reserve')) === before + 1, { message: 'the second delivery to be a duplicate' });
    await settled(db, paid.orderId, 'RESERVED');
    expect(await stockOf(db, sku)).toBe(7);
    expect(types(await emitted(db, paid.orderId))).toEqual(['InventoryReserved']);
  });

  test('seedProducts adds the demo catalogue once and leaves existing stock alone', async () => {
    const added = await seedProducts(db);
    expect(added).toBeGreaterThanOrEqual(0);
    await db.updateTable('products').set({ stock: 3 }).where('sku', '=', 'LIMITED-EDITION').execute();
    expect(await seedProducts(db)).toBe(0);
    expect(await stockOf(db, 'LIMITED-EDITION')).toBe(3);
    const skus = (await db.selectFrom('products').select('sku').execute()).map((row) => row.sku);
    expect(skus).toEqual(expect.arrayContaining(['KEYBOARD', 'MOUSE', 'MONITOR', 'HEADSET', 'LIMITED-EDITION']));
  });

  describe('HTTP', () => {
    const put = (sku: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${inventory.url}/products/${sku}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

    test('PUT creates (201) then updates (200); GET /products/:sku and GET /products show the price as a two-decimal string', async () => {
      const sku = `HTTP-${v7().slice(-8)}`;
      const created = await put(sku, { name: 'Desk lamp', price: '12.50', stock: 7 });
      expect(created.status).toBe(201);
      expect(await created.json()).toEqual({ sku, name: 'Desk lamp', price: '12.50', stock: 7 });

      const updated = await put(sku, { name: 'Desk lamp XL', price: 19.9, stock: 0 });
      expect(updated.status).toBe(200);
      expect(await updated.json()).toEqual({ sku, name: 'Desk lamp XL', price: '19.90', stock: 0 });

      expect(await (await fetch(`${inventory.url}/products/${sku}`)).json()).toEqual({ sku, name: 'Desk lamp XL', price: '19.90', stock: 0 });
      const list = (await (await fetch(`${inventory.url}/products`)).json()) as { sku: string }[];
      expect(list).toContainEqual({ sku, name: 'Desk lamp XL', price: '19.90', stock: 0 });
      expect(list.map((product) => product.sku)).toEqual([...list.map((product) => product.sku)].sort());
    });

    test('GET an unknown product is 404; a malformed SKU is 400', async () => {
      const unknown = await fetch(`${inventory.url}/products/NOPE-${v7().slice(-8)}`);
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toMatchObject({ error: 'not_found' });
      const malformed = await fetch(`${inventory.url}/products/${encodeURIComponent('bad sku!')}`);
      expect(malformed.status).toBe(400);
    });

    test.each([
      ['a negative stock', { name: 'X', price: '1.00', stock: -1 }, 'stock'],
      ['a fractional stock', { name: 'X', price: '1.00', stock: 1.5 }, 'stock'],
      ['three decimals', { name: 'X', price: '1.005', stock: 1 }, 'price'],
      ['a negative price', { name: 'X', price: -1, stock: 1 }, 'price'],
      ['a price that is not a number', { name: 'X', price: 'cheap', stock: 1 }, 'price'],
      ['a boolean price', { name: 'X', price: true, stock: 1 }, 'price'],
      ['a stock given as a string', { name: 'X', price: '1.00', stock: 'many' }, 'stock'],
      ['a missing name', { price: '1.00', stock: 1 }, 'name'],
      ['an unknown field', { name: 'X', price: '1.00', stock: 1, colour: 'red' }, ''],
    ])('PUT with %s is 400 naming the field, and writes nothing', async (_, body, field) => {
      const sku = `BAD-${v7().slice(-8)}`;
      const response = await put(sku, body);
      expect(response.status).toBe(400);
      const error = (await response.json()) as { error: string; message: string };
      expect(error.error).toBe('validation_failed');
      expect(error.message).toContain(field);
      expect(await db.selectFrom('products').select('sku').where('sku', '=', sku).executeTakeFirst()).toBeUndefined();
    });
  });
});

test('INVENTORY_FAILURE_RATE=1: an order that would fit fails as "simulated" and no stock changes', async () => {
  const inventory = await startInventory('failrate', { env: { INVENTORY_FAILURE_RATE: '1' } });
  try {
    const sku = await addProduct(inventory.db, 10);
    const paid = paymentCompleted([{ sku, qty: 1 }]);
    await inventory.publish(paid);
    expect(await settled(inventory.db, paid.orderId, 'FAILED')).toMatchObject({ reason: 'simulated' });
    expect(await stockOf(inventory.db, sku)).toBe(10);
    expect(await emitted(inventory.db, paid.orderId)).toMatchObject([{ type: 'InventoryFailed', payload: { reason: 'simulated', skus: [sku] } }]);
  } finally {
    await inventory.stop();
  }
});

test('50 concurrent PaymentCompleted for a product with stock 5, two instances: exactly 5 reserved, stock 0, never negative', async () => {
  const inventory = await startInventory('rush', { instances: 2 });
  try {
    const sku = await addProduct(inventory.db, 5);
    // Every order also takes a plentiful product, locked in the other order, to exercise the lock ordering.
    const other = await addProduct(inventory.db, 1_000);
    const orders = Array.from({ length: 50 }, (_, index) => paymentCompleted(index % 2 ? [{ sku, qty: 1 }, { sku: other, qty: 1 }] : [{ sku: other, qty: 1 }, { sku, qty: 1 }]));
    await inventory.publish(...orders);
    await Promise.all(orders.map((order) => applied(inventory.db, order.eventId, 'inventory.reserve')));

    const rows = await inventory.db.selectFrom('reservations').select(['status', 'reason']).execute();
    expect(rows.filter((row) => row.status === 'RESERVED')).toHaveLength(5);
    expect(rows.filter((row) => row.status === 'FAILED' && row.reason === 'out_of_stock')).toHaveLength(45);
    expect(await stockOf(inventory.db, sku)).toBe(0);
    expect(await stockOf(inventory.db, other)).toBe(995);
    const events = (await Promise.all(orders.map((order) => emitted(inventory.db, order.orderId)))).flat();
    expect(events.filter((event) => event.type === 'InventoryReserved')).toHaveLength(5);
    expect(events.filter((event) => event.type === 'InventoryFailed')).toHaveLength(45);
  } finally {
    await inventory.stop();
  }
});

test('with ADMIN_TOKEN set, PUT /products/:sku needs "Authorization: Bearer <token>" (401 otherwise, before the body is read)', async () => {
  const inventory = await startInventory('admin', { env: { ADMIN_TOKEN: 'test-admin-token' } });
  try {
    const sku = `AUTH-${v7().slice(-8)}`;
    const put = (headers: Record<string, string>, body: unknown = { name: 'Secret', price: '5.00', stock: 1 }) =>
      fetch(`${inventory.url}/products/${sku}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

    for (const headers of [{}, { authorization: 'Bearer wrong-token!' }, { authorization: 'test-admin-token' }] as Record<string, string>[]) {
      const response = await put(headers);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: 'unauthorized' });
    }
    expect((await put({}, { nonsense: true })).status).toBe(401);
    expect(await inventory.db.selectFrom('products').select('sku').where('sku', '=', sku).executeTakeFirst()).toBeUndefined();

    const allowed = await put({ authorization: 'Bearer test-admin-token' });
    expect(allowed.status).toBe(201);
    expect((await fetch(`${inventory.url}/products/${sku}`)).status).toBe(200);
  } finally {
    await inventory.stop();
  }
});
