/**
 * The order intake on a real database: requests that arrive while an accept transaction is
 * running are accepted together in the next one, and that changes nothing a request sees.
 * Calls made in one tick arrive together by construction: the first gets a transaction at
 * once, the rest wait for it, so every batch below is known in advance (and checked).
 */
import { classifyFailure, continueTrace, createDatabase, HttpError, migrateDatabase, Outbox, type Database } from '@checkout-saga/shared/internal';
import { createTestDatabase, startTcpProxy, waitFor, type TcpProxy, type TestDatabase } from '@checkout-saga/shared/testing';
import { sql } from 'kysely';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { OrderTables } from '../src/db.ts';
import { requestHash, type Acceptance } from '../src/orders/accept.ts';
import { orderIntake, type OrderIntakeOptions } from '../src/orders/order-intake.ts';
import type { SagaOrder } from '../src/saga/decide.ts';
import { startSaga } from '../src/saga/start.ts';

const SAGA_TIMEOUT_MS = 60_000;

let database: TestDatabase;
let handle: Database<OrderTables>;
let outbox: Outbox<OrderTables>;

beforeAll(async () => {
  database = await createTestDatabase('order_intake');
  await migrateDatabase({ databaseUrl: database.url, service: 'order' });
  handle = createDatabase<OrderTables>(database.url, 8);
  outbox = new Outbox<OrderTables>(handle.db, { onCommit: () => {}, notify: false });
});

afterAll(async () => {
  await handle?.close();
  await database?.drop();
});

function anOrder(overrides: Partial<SagaOrder> = {}): SagaOrder {
  return { customerId: 'customer-1', customerEmail: 'ada@example.com', items: [{ sku: 'SKU-1', qty: 2 }], amountMinor: 12550, currency: 'EUR', ...overrides };
}

/** An intake that records the size of every transaction it runs. */
function intakeOn(target: Outbox<OrderTables>, options: Partial<OrderIntakeOptions> = {}) {
  const transactions: number[] = [];
  const intake = orderIntake({ outbox: target, sagaTimeoutMs: SAGA_TIMEOUT_MS, batchSizes: { observe: (size) => transactions.push(size) }, ...options });
  return { intake, transactions };
}

/** Every outcome, in call order: the acceptance, or the error it was refused with. */
function outcomes(promises: readonly Promise<Acceptance>[]): Promise<(Acceptance | Error)[]> {
  return Promise.all(promises.map((promise) => promise.catch((error: Error) => error)));
}

function accepted(outcome: Acceptance | Error): Acceptance {
  if (outcome instanceof Error) throw outcome;
  return outcome;
}

/** How many transactions wrote these orders. */
async function transactionsThatWrote(orderIds: readonly string[]): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(distinct xmin::text)::int as n from orders where order_id = any(${orderIds}::uuid[])`.execute(handle.db);
  return rows[0]!.n;
}

/** Per order: its saga, history and outbox rows, as written. */
async function writtenFor(orderIds: readonly string[]) {
  const { rows } = await sql<{ order_id: string; state: string; deadline_ms: number; history: string[]; outbox: { type: string; traceparent: string }[] }>`
    select o.order_id, s.state,
           (extract(epoch from s.timeout_at - s.created_at) * 1000)::float8 as deadline_ms,
           (select array_agg(h.type order by h.id) from saga_history h where h.saga_id = s.saga_id) as history,
           (select json_agg(json_build_object('type', x.envelope->>'type', 'traceparent', x.headers->>'traceparent') order by x.id)
              from outbox x where x.envelope->>'sagaId' = s.saga_id::text) as outbox
    from orders o join sagas s on s.order_id = o.order_id
    where o.order_id = any(${orderIds}::uuid[])`.execute(handle.db);
  return new Map(rows.map((row) => [row.order_id, row]));
}

describe('the order intake', () => {
  test('accepts a lone request at once, in a transaction of its own', async () => {
    const { intake, transactions } = intakeOn(outbox);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await intake.submit({ order: anOrder() })).body.orderId);

    expect(transactions).toEqual([1, 1, 1]);
    expect(await transactionsThatWrote(ids)).toBe(3);
  });

  test('accepts the requests that arrive while a transaction runs together in the next one, each with its own order, saga, history and event', async () => {
    const { intake, transactions } = intakeOn(outbox);
    const traceparents = Array.from({ length: 20 }, () => continueTrace());
    const results = (await outcomes(traceparents.map((traceparent) => intake.submit({ order: anOrder(), traceparent })))).map(accepted);

    expect(transactions).toEqual([1, 19]);
    expect(results.every((result) => result.statusCode === 202 && !result.replayed)).toBe(true);
    const ids = results.map((result) => result.body.orderId);
    expect(new Set(ids).size).toBe(20);
    expect(await transactionsThatWrote(ids)).toBe(2);

    const written = await writtenFor(ids);
    results.forEach((result, index) => {
      const row = written.get(result.body.orderId);
      expect(row).toMatchObject({ state: 'PAYMENT_PENDING', history: ['OrderCreated'], outbox: [{ type: 'OrderCreated', traceparent: traceparents[index] }] });
      expect(row!.deadline_ms).toBeGreaterThan(SAGA_TIMEOUT_MS - 1000);
      expect(row!.deadline_ms).toBeLessThanOrEqual(SAGA_TIMEOUT_MS);
    });
  });

  test('takes at most maxBatch requests into one transaction', async () => {
    const { intake, transactions } = intakeOn(outbox, { maxBatch: 4 });
    const results = await outcomes(Array.from({ length: 10 }, () => intake.submit({ order: anOrder() })));

    expect(results.map(accepted)).toHaveLength(10);
    expect(transactions).toEqual([1, 4, 4, 1]);
  });

  test('a key given twice in one batch makes one order: the same body gets its response, a different body a 409', async () => {
    const { intake, transactions } = intakeOn(outbox);
    // Characters an array literal would have to quote, as the taken keys are read back as one.
    const key = `twice "quoted", {braced} \\ ${v7()}`;
    const [, first, retry, reused, other] = await outcomes([
      intake.submit({ order: anOrder() }),
      intake.submit({ order: anOrder(), idempotencyKey: key }),
      intake.submit({ order: anOrder(), idempotencyKey: key }),
      intake.submit({ order: anOrder({ amountMinor: 12551 }), idempotencyKey: key }),
      intake.submit({ order: anOrder() }),
    ]);

    expect(transactions).toEqual([1, 4]);
    expect(accepted(first!)).toMatchObject({ statusCode: 202, replayed: false });
    expect(accepted(retry!)).toEqual({ statusCode: 202, body: accepted(first!).body, replayed: true });
    expect(reused).toBeInstanceOf(HttpError);
    expect(reused).toMatchObject({ statusCode: 409, code: 'idempotency_key_reused' });
    expect(accepted(other!).replayed).toBe(false);

    const keys = await handle.db.selectFrom('idempotency_keys').select(['order_id']).where('key', '=', key).execute();
    expect(keys).toEqual([{ order_id: accepted(first!).body.orderId }]);
    expect(await transactionsThatWrote([accepted(first!).body.orderId, accepted(other!).body.orderId])).toBe(1);
  });

  test('a key committed earlier is replayed or refused inside a batch, and the others of the batch are accepted', async () => {
    const { intake, transactions } = intakeOn(outbox);
    const key = `earlier-${v7()}`;
    const earlier = await intake.submit({ order: anOrder(), idempotencyKey: key });
    const [, retry, reused, other] = await outcomes([
      intake.submit({ order: anOrder() }),
      intake.submit({ order: anOrder(), idempotencyKey: key }),
      intake.submit({ order: anOrder({ customerEmail: 'grace@example.com' }), idempotencyKey: key }),
      intake.submit({ order: anOrder() }),
    ]);

    // The last three in one batch, whether or not the first joined them.
    expect(transactions.at(-1)).toBeGreaterThanOrEqual(3);
    expect(accepted(retry!)).toEqual({ statusCode: 202, body: earlier.body, replayed: true });
    expect(reused).toMatchObject({ statusCode: 409, code: 'idempotency_key_reused' });
    expect(accepted(other!)).toMatchObject({ statusCode: 202, replayed: false });
    expect(await handle.db.selectFrom('idempotency_keys').select('order_id').where('key', '=', key).execute()).toEqual([{ order_id: earlier.body.orderId }]);
  });

  test('a key that another transaction is inserting: the batch waits for its commit, then replays or refuses it', async () => {
    const { intake, transactions } = intakeOn(outbox);
    const key = `concurrent-${v7()}`;
    const order = anOrder();
    const ids = { orderId: v7(), sagaId: v7() };
    const firstBody = { status: 'accepted', ...ids, message: `order accepted; follow it at GET /orders/${ids.orderId}` };

    // Another process's transaction (a second order service, say) holds the key, uncommitted.
    let holding!: () => void;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    const other = handle.db.transaction().execute(async (trx) => {
      await startSaga(trx, { ids, order, claim: { key, requestHash: requestHash(order), statusCode: 202, response: JSON.stringify(firstBody) } }, SAGA_TIMEOUT_MS);
      holding();
      await released;
    });
    await held;

    const results = outcomes([
      intake.submit({ order: anOrder() }),
      intake.submit({ order, idempotencyKey: key }),
      intake.submit({ order: anOrder({ amountMinor: 1 }), idempotencyKey: key }),
      intake.submit({ order: anOrder() }),
    ]);
    await waitFor(
      async () => (await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`.execute(handle.db)).rows[0]!.n === 1,
      { message: "the batch waiting on the other transaction's key" },
    );
    release();
    await other;
    const [, retry, reused, plain] = await results;

    expect(transactions).toEqual([1, 3]);
    expect(accepted(retry!)).toEqual({ statusCode: 202, body: firstBody, replayed: true });
    expect(reused).toMatchObject({ statusCode: 409, code: 'idempotency_key_reused' });
    expect(accepted(plain!)).toMatchObject({ statusCode: 202, replayed: false });
    expect(await handle.db.selectFrom('orders').select('order_id').where('order_id', '=', ids.orderId).execute()).toHaveLength(1);
  });

  test('one request that the database refuses fails alone: the others of its batch are accepted, each in a transaction of its own', async () => {
    // Nothing in a request that passes the HTTP schema makes an insert fail, so this test gives
    // the database a rule of its own that refuses one customer.
    await sql`alter table orders add constraint test_refused_customer check (customer_id is distinct from 'refused-by-the-database')`.execute(handle.db);
    try {
      const { intake, transactions } = intakeOn(outbox);
      const results = await outcomes([
        intake.submit({ order: anOrder() }),
        ...Array.from({ length: 5 }, () => intake.submit({ order: anOrder() })),
        intake.submit({ order: anOrder({ customerId: 'refused-by-the-database' }) }),
        ...Array.from({ length: 5 }, () => intake.submit({ order: anOrder() })),
      ]);

      expect(transactions).toEqual([1, 11, ...Array(11).fill(1)]);
      const refused = results[6];
      expect(refused).toMatchObject({ code: '23514', constraint: 'test_refused_customer' });
      const innocent = [...results.slice(1, 6), ...results.slice(7)].map(accepted);
      expect(innocent.every((result) => result.statusCode === 202 && !result.replayed)).toBe(true);
      expect(await transactionsThatWrote(innocent.map((result) => result.body.orderId))).toBe(10);
      const refusedRows = await handle.db.selectFrom('orders').select('order_id').where('customer_id', '=', 'refused-by-the-database').execute();
      expect(refusedRows).toEqual([]);
    } finally {
      await sql`alter table orders drop constraint test_refused_customer`.execute(handle.db);
    }
  });

  test('stop lets the requests it took be accepted, then refuses new ones with 503', async () => {
    const { intake, transactions } = intakeOn(outbox);
    const taken = outcomes(Array.from({ length: 30 }, () => intake.submit({ order: anOrder() })));
    await intake.stop();

    expect(transactions).toEqual([1, 29]);
    const results = (await taken).map(accepted);
    expect(await transactionsThatWrote(results.map((result) => result.body.orderId))).toBe(2);
    await expect(intake.submit({ order: anOrder() })).rejects.toMatchObject({ statusCode: 503, code: 'unavailable' });
  });
});

describe('the order intake while its database is away', () => {
  let proxy: TcpProxy;
  let behindProxy: Database<OrderTables>;

  beforeAll(async () => {
    const target = new URL(database.url);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    behindProxy = createDatabase<OrderTables>(proxy.url(database.url), 4);
  });

  afterAll(async () => {
    await behindProxy?.close();
    await proxy?.close();
  });

  test('every request of a batch fails as unavailable (503), none for another, and once it is back they are accepted', async () => {
    const { intake, transactions } = intakeOn(new Outbox<OrderTables>(behindProxy.db, { onCommit: () => {}, notify: false }));
    proxy.cut();
    const failed = await outcomes(Array.from({ length: 10 }, () => intake.submit({ order: anOrder() })));

    // No second try: the COMMIT of a batch whose connection failed may have gone through unseen.
    expect(transactions).toEqual([1, 9]);
    expect(failed.map((outcome) => outcome instanceof Error && classifyFailure(outcome))).toEqual(Array(10).fill('infrastructure'));

    proxy.restore();
    const results = await outcomes(Array.from({ length: 10 }, () => intake.submit({ order: anOrder() })));
    expect(results.map(accepted).map((result) => result.statusCode)).toEqual(Array(10).fill(202));
  });
});
