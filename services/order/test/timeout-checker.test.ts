import { createDatabase, createLogger, migrateDatabase, Outbox, type Database, type Envelope } from '@checkout-saga/shared/internal';
import { createTestDatabase, waitFor, type TestDatabase } from '@checkout-saga/shared/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { OrderTables } from '../src/db.ts';
import { acceptOrder } from '../src/orders/accept.ts';
import type { SagaState } from '../src/saga/decide.ts';
import { TimeoutChecker } from '../src/timeout-checker.ts';
import { getJson, orderBody, outboxOf, postOrder, startOrderHarness, type OrderHarness } from './support.ts';

describe('the timeout checker in the running service', () => {
  let harness: OrderHarness;

  beforeAll(async () => {
    harness = await startOrderHarness('timeout', { SAGA_TIMEOUT_MS: '300', TIMEOUT_CHECK_INTERVAL_MS: '20' });
  });

  afterAll(async () => {
    await harness?.stop();
  });

  test('cancels a saga that does not finish in time, with reason timeout and OrderCancelled', async () => {
    const accepted = await postOrder(harness.url, orderBody());
    const { orderId, sagaId } = accepted.body as { orderId: string; sagaId: string };

    const order = await waitFor(
      async () => {
        const { body } = await getJson(`${harness.url}/orders/${orderId}`);
        return body.status === 'CANCELLED' && body;
      },
      { message: 'order cancelled by timeout' },
    );
    expect(order).toMatchObject({ status: 'CANCELLED', reason: 'timeout' });

    const saga = (await getJson(`${harness.url}/sagas/${sagaId}`)).body;
    expect(saga).toMatchObject({ state: 'CANCELLED', reason: 'timeout' });
    expect(saga.history.map((entry: { type: string; fromState: string | null; toState: string; compensation: boolean }) => [entry.type, entry.fromState, entry.toState, entry.compensation])).toEqual([
      ['OrderCreated', null, 'PAYMENT_PENDING', false],
      ['SagaTimedOut', 'PAYMENT_PENDING', 'CANCELLED', true],
      ['OrderCancelled', 'PAYMENT_PENDING', 'CANCELLED', true],
    ]);

    const outbox = await outboxOf(harness.db, sagaId);
    expect(outbox.map((event) => event.type)).toEqual(['OrderCreated', 'OrderCancelled']);
    expect(outbox[1]!.payload).toMatchObject({ reason: 'timeout', customerEmail: 'ada@example.com', amountMinor: 12550, currency: 'EUR' });
    await waitFor(() => harness.published.some((event) => event.eventId === outbox[1]!.eventId), { message: 'OrderCancelled published' });
    expect(await harness.metric('order_sagas_timed_out_total')).toBeGreaterThanOrEqual(1);
  });

  test('counts a saga it cancels as finished for timeout, with its duration and its timed_out step', async () => {
    const before = await harness.metric('order_sagas_finished_total', { outcome: 'cancelled', reason: 'timeout' });
    const accepted = await postOrder(harness.url, orderBody());
    const { orderId } = accepted.body as { orderId: string };
    await waitFor(async () => (await getJson(`${harness.url}/orders/${orderId}`)).body.status === 'CANCELLED', { message: 'order cancelled by timeout' });

    await waitFor(async () => (await harness.metric('order_sagas_finished_total', { outcome: 'cancelled', reason: 'timeout' })) === before + 1, {
      message: 'the cancellation counted',
    });
    expect(await harness.metric('order_saga_duration_seconds_count', { outcome: 'cancelled', reason: 'timeout' })).toBe(before + 1);
    // The deadline is 300 ms: no saga cancelled for it can have taken less.
    expect(await harness.metric('order_saga_duration_seconds_sum', { outcome: 'cancelled', reason: 'timeout' })).toBeGreaterThanOrEqual(0.3 * (before + 1));
    expect(await harness.metric('order_saga_step_seconds_count', { transition: 'timed_out' })).toBe(before + 1);
  });
});

describe('timeout checkers racing on one database', () => {
  let database: TestDatabase;
  let handle: Database<OrderTables>;
  let outbox: Outbox<OrderTables>;
  const logger = createLogger('order', 'silent');

  beforeAll(async () => {
    database = await createTestDatabase('order_timeout_race');
    await migrateDatabase({ databaseUrl: database.url, service: 'order' });
    handle = createDatabase<OrderTables>(database.url, 12);
    outbox = new Outbox<OrderTables>(handle.db, { onCommit: () => {}, notify: false });
  });

  afterAll(async () => {
    await handle?.close();
    await database?.drop();
  });

  async function createSagas(count: number, state: SagaState, due: boolean): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const accepted = await acceptOrder(
        outbox,
        { order: { customerId: null, customerEmail: 'ada@example.com', items: [{ sku: 'SKU-1', qty: 1 }], amountMinor: 1000 + i, currency: 'USD' } },
        3_600_000,
      );
      ids.push(accepted.body.sagaId);
    }
    const reason = state === 'CANCELLED' ? 'payment_failed' : null;
    await handle.db
      .updateTable('sagas')
      .set({ state, reason, ...(due ? { timeout_at: sql<Date>`now() - interval '1 second'` } : {}) })
      .where('saga_id', 'in', ids)
      .execute();
    return ids;
  }

  test('two checkers never cancel the same saga twice, and touch nothing that is not due', async () => {
    const due = [
      ...(await createSagas(30, 'PAYMENT_PENDING', true)),
      ...(await createSagas(15, 'INVENTORY_PENDING', true)),
      ...(await createSagas(15, 'REFUND_PENDING', true)),
    ];
    const finished = [...(await createSagas(5, 'CONFIRMED', true)), ...(await createSagas(5, 'CANCELLED', true))];
    const notYet = await createSagas(5, 'PAYMENT_PENDING', false);
    const statesBefore = new Map((await handle.db.selectFrom('sagas').select(['saga_id', 'state']).execute()).map((row) => [row.saga_id, row.state]));

    let counted = 0;
    const checker = () => new TimeoutChecker({ outbox, intervalMs: 10, batchSize: 4, logger, timedOut: { inc: (n = 1) => void (counted += n) } });
    const [a, b] = [checker(), checker()];
    // Open the pool's connections first, so all four runs really start together.
    await Promise.all(Array.from({ length: 8 }, () => sql`select pg_sleep(0.01)`.execute(handle.db)));
    const runs = await Promise.all([a.runOnce(), b.runOnce(), a.runOnce(), b.runOnce()]);
    expect(runs.reduce((sum, n) => sum + n, 0)).toBe(due.length);
    expect(runs[0]! + runs[2]!, 'checker a cancelled some').toBeGreaterThan(0);
    expect(runs[1]! + runs[3]!, 'checker b cancelled some').toBeGreaterThan(0);
    expect(counted).toBe(due.length);

    const sagas = await handle.db.selectFrom('sagas').innerJoin('orders', 'orders.order_id', 'sagas.order_id').select(['sagas.saga_id', 'state', 'sagas.reason', 'status']).execute();
    const bySaga = new Map(sagas.map((row) => [row.saga_id, row]));
    for (const id of due) expect(bySaga.get(id)).toMatchObject({ state: 'CANCELLED', reason: 'timeout', status: 'CANCELLED' });
    for (const id of [...finished, ...notYet]) expect(bySaga.get(id)!.state).toBe(statesBefore.get(id));

    const timedOut = await handle.db.selectFrom('saga_history').select(['saga_id', 'from_state', 'compensation']).where('type', '=', 'SagaTimedOut').execute();
    expect(timedOut.map((row) => row.saga_id).sort()).toEqual([...due].sort());
    for (const row of timedOut) {
      expect(row.from_state).toBe(statesBefore.get(row.saga_id));
      expect(row.compensation).toBe(true);
    }

    const cancellations = (await handle.db.selectFrom('outbox').select('envelope').where('routing_key', '=', 'order.cancelled').execute()).map(
      (row) => row.envelope as Envelope<'OrderCancelled'>,
    );
    expect(cancellations.map((event) => event.sagaId).sort()).toEqual([...due].sort());
    expect(cancellations.every((event) => event.payload.reason === 'timeout')).toBe(true);

    // Nothing is left to do, for either of them.
    expect(await Promise.all([a.runOnce(), b.runOnce()])).toEqual([0, 0]);
  });

  test('scheduled checkers share the work and stop cleanly', async () => {
    const due = await createSagas(20, 'INVENTORY_PENDING', true);
    const checkers = [0, 1, 2].map(() => new TimeoutChecker({ outbox, intervalMs: 10, batchSize: 3, logger }));
    for (const checker of checkers) checker.start();
    try {
      await waitFor(
        async () => {
          const rows = await handle.db.selectFrom('sagas').select('state').where('saga_id', 'in', due).execute();
          return rows.every((row) => row.state === 'CANCELLED');
        },
        { message: 'every due saga cancelled' },
      );
    } finally {
      await Promise.all(checkers.map((checker) => checker.stop()));
    }
    for (const id of due) expect((await outboxOf(handle.db, id)).map((event) => event.type)).toEqual(['OrderCreated', 'OrderCancelled']);
  });
});
