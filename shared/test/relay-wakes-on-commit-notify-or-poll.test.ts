/**
 * Contract: the relay's three ways of learning about new rows each deliver on their own.
 * - in-process wake (default): a commit through the service's outbox is published at once;
 * - poll: with notifications off, a row inserted by another connection (plain SQL, nothing
 *   in the process is woken) is published by the poll alone;
 * - NOTIFY (OUTBOX_NOTIFY=true): a row inserted by another connection that sends pg_notify
 *   is published long before a (deliberately huge) poll interval would have come round.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { testNames, testServers, waitFor, deleteTopology, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, insertOutboxRows, orderCreated, startTestService, tapExchange, testPool } from './support/harness.ts';

/** Long enough that a row delivered within DELIVERED_WITHIN_MS cannot have been found by a poll. */
const NEVER_POLLS_MS = '600000';
const DELIVERED_WITHIN_MS = 5_000;

const cleanup = new Cleanup();
let servers: TestServers;

beforeAll(async () => {
  servers = await testServers();
});

afterAll(() => cleanup.run());

/** A service that only publishes, on its own database and exchange, with a tap on the exchange. */
async function publishingService(label: string, env: Record<string, string>) {
  const database = await createMessagingDatabase(label);
  cleanup.defer(() => database.drop());
  const names = testNames(label);
  cleanup.defer(() => deleteTopology(servers.amqpUrl, names));
  const tap = await tapExchange(servers.amqpUrl, names.exchange);
  cleanup.defer(() => tap.close());
  const pool = testPool(database.url);
  cleanup.defer(() => pool.end());
  const running = await startTestService({
    env: { DATABASE_URL: database.url, DATABASE_POOL_SIZE: '3', RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix, ...env },
  });
  cleanup.defer(() => running.service.stop());
  return { ...running, tap, pool };
}

/** Resolves with how long it took the event to reach the exchange. */
async function delivery(tap: { counts: Map<string, number> }, eventId: string, since: number): Promise<number> {
  await waitFor(() => tap.counts.has(eventId), { timeoutMs: DELIVERED_WITHIN_MS, intervalMs: 5, message: `event ${eventId} on the exchange` });
  return performance.now() - since;
}

describe('the relay', () => {
  test('publishes a row committed through the outbox at once, woken in-process (default)', async () => {
    const { context, tap, config } = await publishingService('wake', { OUTBOX_POLL_INTERVAL_MS: NEVER_POLLS_MS });
    expect(config.OUTBOX_NOTIFY).toBe(false);

    for (let round = 0; round < 3; round++) {
      const event = orderCreated();
      const started = performance.now();
      await context.outbox.transaction((trx) => context.outbox.enqueue(trx, event));
      expect(await delivery(tap, event.eventId, started)).toBeLessThan(DELIVERED_WITHIN_MS);
    }
  });

  test('publishes a row inserted by another connection, without any wake, by polling alone', async () => {
    const { tap, pool, config } = await publishingService('poll', { OUTBOX_POLL_INTERVAL_MS: '50', OUTBOX_NOTIFY: 'false' });
    expect(config.OUTBOX_POLL_INTERVAL_MS).toBe(50);

    for (let round = 0; round < 3; round++) {
      const event = orderCreated();
      const started = performance.now();
      await insertOutboxRows(pool, [event]);
      expect(await delivery(tap, event.eventId, started)).toBeLessThan(DELIVERED_WITHIN_MS);
    }
  });

  test('with OUTBOX_NOTIFY, publishes a row inserted and notified by another connection long before the poll', async () => {
    const { tap, pool, config } = await publishingService('notify', { OUTBOX_POLL_INTERVAL_MS: NEVER_POLLS_MS, OUTBOX_NOTIFY: 'true' });
    expect(config.OUTBOX_NOTIFY).toBe(true);
    await waitFor(
      async () => (await pool.query("select 1 from pg_stat_activity where datname = current_database() and query ilike 'listen %'")).rowCount === 1,
      { message: 'the relay to LISTEN' },
    );

    // Every wake the relay gives itself (start, broker attach, LISTEN established) happened before the first
    // round was delivered, and the poll is minutes away: from then on only a notification can wake it.
    for (let round = 0; round < 3; round++) {
      const event = orderCreated();
      const started = performance.now();
      await insertOutboxRows(pool, [event], { notify: true });
      expect(await delivery(tap, event.eventId, started)).toBeLessThan(DELIVERED_WITHIN_MS);
    }
  });
});
