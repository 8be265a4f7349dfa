/**
 * POST /orders requests that arrive together are accepted together, in fewer transactions
 * than requests, and each still gets the answer it would have had alone.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { orderBody, postOrder, rowCounts, startOrderHarness, type OrderHarness } from './support.ts';

let harness: OrderHarness;

beforeAll(async () => {
  harness = await startOrderHarness('together');
});

afterAll(async () => {
  await harness?.stop();
});

async function transactionsThatWrote(orderIds: readonly unknown[]): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(distinct xmin::text)::int as n from orders where order_id = any(${orderIds}::uuid[])`.execute(harness.db);
  return rows[0]!.n;
}

const acceptTransactions = () => harness.metric('order_accept_transaction_requests_count');
const acceptedRequests = () => harness.metric('order_accept_transaction_requests_sum');

describe('POST /orders arriving together', () => {
  test('100 at once are all accepted as distinct orders, each with its own trace, in fewer transactions than requests', async () => {
    const before = await rowCounts(harness.db);
    const [transactionsBefore, requestsBefore] = [await acceptTransactions(), await acceptedRequests()];
    const traceIds = Array.from({ length: 100 }, () => randomBytes(16).toString('hex'));
    const responses = await Promise.all(traceIds.map((traceId) => postOrder(harness.url, orderBody(), { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` })));

    expect(responses.map((response) => response.status)).toEqual(responses.map(() => 202));
    const orderIds = responses.map((response) => response.body.orderId);
    expect(new Set(orderIds).size).toBe(100);
    const after = await rowCounts(harness.db);
    expect(after).toEqual({ ...before, orders: before.orders! + 100, sagas: before.sagas! + 100, history: before.history! + 100, outbox: before.outbox! + 100 });

    const transactions = await transactionsThatWrote(orderIds);
    expect(transactions).toBeLessThan(100);
    expect((await acceptTransactions()) - transactionsBefore).toBe(transactions);
    expect((await acceptedRequests()) - requestsBefore).toBe(100);

    // Each OrderCreated carries its own request's trace, batch or not.
    const { rows } = await sql<{ order_id: string; traceparent: string }>`
      select envelope->>'orderId' as order_id, headers->>'traceparent' as traceparent
      from outbox where envelope->>'orderId' = any(${orderIds}::text[])`.execute(harness.db);
    const traceOf = new Map(rows.map((row) => [row.order_id, row.traceparent.split('-')[1]]));
    expect(orderIds.map((orderId) => traceOf.get(orderId as string))).toEqual(traceIds);
  });

  test('requests reusing one Idempotency-Key with one body make one order, and all get its response', async () => {
    const key = `together-${v7()}`;
    const before = await rowCounts(harness.db);
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? postOrder(harness.url, orderBody(), { 'idempotency-key': key }) : postOrder(harness.url, orderBody()))),
    );

    expect(responses.map((response) => response.status)).toEqual(responses.map(() => 202));
    const keyed = responses.filter((_, i) => i % 2 === 0);
    expect(new Set(keyed.map((response) => JSON.stringify(response.body))).size).toBe(1);
    expect(keyed.filter((response) => response.headers.get('idempotent-replayed') !== 'true')).toHaveLength(1);
    const after = await rowCounts(harness.db);
    expect(after.orders).toBe(before.orders! + 21);
    expect(after.outbox).toBe(before.outbox! + 21);
    expect(after.idempotency_keys).toBe(before.idempotency_keys! + 1);
  });

  test('requests reusing one Idempotency-Key with different bodies: one 202, the others 409, one order', async () => {
    const key = `different-${v7()}`;
    const before = await rowCounts(harness.db);
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? postOrder(harness.url, orderBody({ amount: 100 + i }), { 'idempotency-key': key }) : postOrder(harness.url, orderBody()))),
    );

    const keyed = responses.filter((_, i) => i % 2 === 0);
    expect(keyed.map((response) => response.status).sort()).toEqual([202, ...Array(9).fill(409)]);
    for (const refused of keyed.filter((response) => response.status === 409)) expect(refused.body).toMatchObject({ error: 'idempotency_key_reused' });
    expect(responses.filter((_, i) => i % 2 === 1).map((response) => response.status)).toEqual(Array(10).fill(202));
    const after = await rowCounts(harness.db);
    expect(after.orders).toBe(before.orders! + 11);
    expect(after.idempotency_keys).toBe(before.idempotency_keys! + 1);
  });

  test('a request the database refuses gets its error alone; the others arriving with it are accepted', async () => {
    // Nothing in a request that passes the HTTP schema makes an insert fail, so the test gives
    // the database a rule of its own that refuses one customer.
    await sql`alter table orders add constraint test_refused_customer check (customer_id is distinct from 'refused-by-the-database')`.execute(harness.db);
    try {
      const before = await rowCounts(harness.db);
      const responses = await Promise.all(
        Array.from({ length: 30 }, (_, i) => postOrder(harness.url, orderBody(i === 15 ? { customerId: 'refused-by-the-database' } : {}))),
      );

      expect(responses[15]).toMatchObject({ status: 500, body: { error: 'internal_error' } });
      expect(responses.filter((_, i) => i !== 15).map((response) => response.status)).toEqual(Array(29).fill(202));
      const after = await rowCounts(harness.db);
      expect(after.orders).toBe(before.orders! + 29);
      expect(after.outbox).toBe(before.outbox! + 29);
    } finally {
      await sql`alter table orders drop constraint test_refused_customer`.execute(harness.db);
    }
  });
});
