/**
 * Contract: a message the broker returns as unroutable (no queue bound to its routing
 * key) is not "published": its row stays unpublished with the reason in last_error and is
 * retried until a queue is bound. Such a row does not hold back the rows behind it.
 */
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newEvent } from '../src/index.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, orderCreatedEvents, outboxCounts, startTestService, tapExchange, testPool } from './support/harness.ts';

const cleanup = new Cleanup();
let servers: TestServers;

beforeAll(async () => {
  servers = await testServers();
});

afterAll(() => cleanup.run());

async function publishingService(label: string, env: Record<string, string>) {
  const database = await createMessagingDatabase(label);
  cleanup.defer(() => database.drop());
  const names = testNames(label);
  cleanup.defer(() => deleteTopology(servers.amqpUrl, names));
  const pool = testPool(database.url);
  cleanup.defer(() => pool.end());
  // Declared before the service, bound to nothing yet: the exchange routes nowhere.
  const tap = await tapExchange(servers.amqpUrl, names.exchange, []);
  cleanup.defer(() => tap.close());
  const running = await startTestService({
    env: { DATABASE_URL: database.url, DATABASE_POOL_SIZE: '3', RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix, ...env },
  });
  cleanup.defer(() => running.service.stop());
  return { ...running, tap, pool };
}

function paymentFailed() {
  return newEvent('PaymentFailed', { sagaId: v7(), orderId: v7() }, { reason: 'declined', amountMinor: 50, currency: 'EUR' });
}

describe('an unroutable message', () => {
  test('keeps its row unpublished with last_error naming it unroutable, and is published once a queue is bound', async () => {
    const { context, tap, pool } = await publishingService('unroutable', { OUTBOX_POLL_INTERVAL_MS: '100' });
    const [event] = orderCreatedEvents(1);
    await context.outbox.transaction((trx) => context.outbox.enqueue(trx, event!));

    const row = await waitFor(
      async () => {
        const { rows } = await pool.query<{ published_at: Date | null; attempts: number; last_error: string | null }>('select published_at, attempts, last_error from outbox where event_id = $1', [event!.eventId]);
        return rows[0]?.last_error ? rows[0] : undefined;
      },
      { message: 'the publish to be recorded as failed' },
    );
    expect(row.published_at).toBeNull();
    expect(row.attempts).toBeGreaterThanOrEqual(1);
    expect(row.last_error).toMatch(/unroutable/);
    expect(row.last_error).toContain('order.created');

    await tap.bind('order.created');
    await waitFor(async () => (await outboxCounts(pool)).published === 1, { message: 'the row published by a later retry' });
    await waitFor(() => tap.counts.get(event!.eventId) === 1, { message: 'the event in the newly bound queue' });
  });

  test('does not hold back the routable rows behind it', async () => {
    // Batches of 20 and no poll worth the name: only the one commit wakes the relay.
    const { context, tap, pool } = await publishingService('unroutable_head', { OUTBOX_BATCH_SIZE: '20', OUTBOX_POLL_INTERVAL_MS: '600000' });
    await tap.bind('order.created');
    const poison = paymentFailed();
    const routable = orderCreatedEvents(100);
    await context.outbox.transaction((trx) => context.outbox.enqueue(trx, [poison, ...routable]));

    await waitFor(() => tap.distinct === routable.length, { timeoutMs: 5_000, message: 'every routable row published after one wake' });
    expect(await outboxCounts(pool)).toMatchObject({ total: routable.length + 1, published: routable.length, unpublished: 1 });
    const { rows } = await pool.query<{ last_error: string }>('select last_error from outbox where published_at is null');
    expect(rows).toEqual([{ last_error: expect.stringMatching(/unroutable: no queue is bound to payment\.failed/) }]);
  });
});
