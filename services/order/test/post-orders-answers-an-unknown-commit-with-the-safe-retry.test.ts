/**
 * POST /orders when the database connection fails around COMMIT: the service cannot know
 * whether the order was written, so its 503 says the order may have been accepted (and will
 * then go on through the saga) and that the safe retry is the same Idempotency-Key.
 */
import { waitFor } from '@checkout-saga/shared/testing';
import pg from 'pg';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { orderBody, postOrder, startOrderHarness, type OrderHarness } from './support.ts';

let harness: OrderHarness;
/** Straight to the database, around the proxy: what was committed, whatever the service saw. */
let direct: pg.Pool;

beforeAll(async () => {
  harness = await startOrderHarness('unknown_commit', {}, { databaseProxy: true });
  direct = new pg.Pool({ connectionString: harness.database.url, max: 2 });
  direct.on('error', () => {});
});

afterAll(async () => {
  await direct?.end();
  await harness?.stop();
});

const ordersWithKey = async (key: string) =>
  (await direct.query<{ order_id: string }>('select order_id from idempotency_keys where key = $1', [key])).rows.map((row) => row.order_id);

describe('POST /orders when the connection fails around COMMIT', () => {
  test('a COMMIT whose answer is lost gets a 503 saying the order may have been accepted; the retry with the same Idempotency-Key gets that order', async () => {
    const proxy = harness.proxy!;
    const key = `unknown-commit-${v7()}`;
    // Every packet between the service and its database takes a second each way: the COMMIT
    // reaches the database a second before its answer can reach the service.
    proxy.setLatency(1000);
    const posting = postOrder(harness.url, orderBody(), { 'idempotency-key': key });
    const [orderId] = await waitFor(async () => {
      const ids = await ordersWithKey(key);
      return ids.length === 1 ? ids : undefined;
    }, { intervalMs: 10, message: 'the order committed' });
    proxy.cut();
    const answer = await posting;

    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(answer.body).toMatchObject({ error: 'outcome_unknown', details: { mayHaveBeenAccepted: true, idempotencyKey: key } });
    expect(answer.body.message).toMatch(/may have been accepted/);
    expect(answer.body.message).toMatch(/retry with the same Idempotency-Key/);

    proxy.setLatency(0);
    proxy.restore();
    const retry = await waitFor(async () => {
      const response = await postOrder(harness.url, orderBody(), { 'idempotency-key': key });
      return response.status === 202 ? response : undefined;
    }, { message: 'the retry accepted once the database is back' });
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toMatchObject({ status: 'accepted', orderId });
    expect(await ordersWithKey(key)).toEqual([orderId]);
  });

  test('without an Idempotency-Key, the 503 says the order may have been accepted and that a retry needs a key to be safe', async () => {
    const proxy = harness.proxy!;
    proxy.cut();
    try {
      const answer = await postOrder(harness.url, orderBody());
      expect(answer.status).toBe(503);
      expect(answer.body).toMatchObject({ error: 'outcome_unknown', details: { mayHaveBeenAccepted: true, idempotencyKey: null } });
      expect(answer.body.message).toMatch(/may have been accepted/);
      expect(answer.body.message).toMatch(/Idempotency-Key/);
    } finally {
      proxy.restore();
    }
  });
});
