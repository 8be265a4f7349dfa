/**
 * Contract: every committed outbox row is published exactly once, even with several
 * relays (scaled instances of one service) draining the same table at the same time;
 * a transaction that rolls back publishes nothing.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { MessagingTables } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import {
  Cleanup,
  createMessagingDatabase,
  insertOutboxRows,
  metricValue,
  orderCreated,
  orderCreatedEvents,
  outboxCounts,
  startTestService,
  tapExchange,
  testPool,
  type Tap,
  type TestService,
} from './support/harness.ts';

const ROWS = 3000;
const ROWS_PER_TRANSACTION = 5;
const WRITERS = 12;

const cleanup = new Cleanup();
let servers: TestServers;
let instances: TestService<MessagingTables>[];
let tap: Tap;
let pool: pg.Pool;

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('relay_exactly_once');
  cleanup.defer(() => database.drop());
  const names = testNames('relay-once');
  cleanup.defer(() => deleteTopology(servers.amqpUrl, names));
  pool = testPool(database.url);
  cleanup.defer(() => pool.end());
  tap = await tapExchange(servers.amqpUrl, names.exchange);
  cleanup.defer(() => tap.close());

  // Three instances of one service on one database: three relays, three broker connections, and
  // (pool of 6) two batches in flight per relay.
  const env = {
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: '6',
    RABBITMQ_URL: servers.amqpUrl,
    ORDER_EXCHANGE: names.exchange,
    QUEUE_PREFIX: names.queuePrefix,
    OUTBOX_BATCH_SIZE: '100',
    OUTBOX_POLL_INTERVAL_MS: '50',
  };
  instances = await Promise.all([1, 2, 3].map(() => startTestService({ env })));
  for (const instance of instances) cleanup.defer(() => instance.service.stop());
});

afterAll(() => cleanup.run());

describe('three relays on one outbox table', () => {
  test(`publish each of ${ROWS} rows committed by concurrent transactions exactly once`, async () => {
    const events = orderCreatedEvents(ROWS);
    const transactions = Array.from({ length: ROWS / ROWS_PER_TRANSACTION }, (_, index) => events.slice(index * ROWS_PER_TRANSACTION, (index + 1) * ROWS_PER_TRANSACTION));

    // Writers spread their transactions over the three instances, each waking its own relay on commit.
    let next = 0;
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, writer) => {
        for (let index = next++; index < transactions.length; index = next++) {
          const { context } = instances[(writer + index) % instances.length]!;
          await context.outbox.transaction((trx) => context.outbox.enqueue(trx, transactions[index]!));
        }
      }),
    );

    await waitFor(async () => (await outboxCounts(pool)).published === ROWS, { message: `all ${ROWS} rows marked published` });
    await waitFor(() => tap.distinct === ROWS, { message: `all ${ROWS} events on the exchange` });

    const duplicates = [...tap.counts].filter(([, count]) => count !== 1);
    expect(duplicates, 'events delivered more than once').toEqual([]);
    expect(tap.messages).toHaveLength(ROWS);
    for (const event of events) expect(tap.counts.get(event.eventId), event.eventId).toBe(1);
    expect(await outboxCounts(pool)).toEqual({ total: ROWS, published: ROWS, unpublished: 0, failed: 0 });

    // Each relay counts what the broker confirmed to it: together exactly the rows, none twice.
    const confirmed = await Promise.all(instances.map(({ service }) => metricValue(service.url, 'outbox_published_total')));
    expect(confirmed.reduce((sum, count) => sum + count, 0)).toBe(ROWS);
  });

  test(`publish each row of a backlog of ${ROWS}, committed at once, exactly once with several batches in flight per relay`, async () => {
    const events = orderCreatedEvents(ROWS);
    await insertOutboxRows(pool, events);
    for (const { service } of instances) service.relay.wake();

    await waitFor(() => events.every((event) => tap.counts.has(event.eventId)), { message: `all ${ROWS} backlog events on the exchange` });
    await waitFor(async () => (await outboxCounts(pool)).unpublished === 0, { message: 'every backlog row marked published' });
    for (const event of events) expect(tap.counts.get(event.eventId), event.eventId).toBe(1);
  });

  test('publish the message with the envelope and AMQP properties of the design', async () => {
    const event = orderCreated();
    const { context } = instances[0]!;
    await context.outbox.transaction((trx) => context.outbox.enqueue(trx, event, { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }));
    const message = await waitFor(() => tap.messages.find((candidate) => candidate.properties.messageId === event.eventId), { message: 'the event on the exchange' });

    expect(JSON.parse(message.content.toString())).toEqual(event);
    expect(message.fields.routingKey).toBe('order.created');
    expect(message.properties).toMatchObject({
      messageId: event.eventId,
      type: 'OrderCreated',
      correlationId: event.sagaId,
      contentType: 'application/json',
      deliveryMode: 2,
      headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
  });

  test('publish nothing for a transaction that rolls back', async () => {
    const rolledBack = orderCreated();
    const committed = orderCreated();
    const { context } = instances[1]!;

    await expect(
      context.outbox.transaction(async (trx) => {
        await context.outbox.enqueue(trx, rolledBack);
        throw new Error('business rule failed after the event was enqueued');
      }),
    ).rejects.toThrow('business rule failed');
    // A later commit wakes the relays and drains the table: if the rolled-back row existed, it would go out too.
    await context.outbox.transaction((trx) => context.outbox.enqueue(trx, committed));
    await waitFor(() => tap.counts.has(committed.eventId), { message: 'the committed event on the exchange' });

    expect(tap.counts.has(rolledBack.eventId)).toBe(false);
    const { rows } = await pool.query('select 1 from outbox where event_id = $1', [rolledBack.eventId]);
    expect(rows).toHaveLength(0);
  });
});
