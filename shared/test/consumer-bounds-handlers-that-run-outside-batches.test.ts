/**
 * Contract: handlers that run outside batches (a `batch: false` handler that waits on the
 * outside world inside its transaction, such as a slow payment gateway) run side by side, but
 * never so many that they hold every connection of the pool: the relay, the timeout checker
 * and HTTP keep connections of their own. With a backlog behind slow handlers, fewer handlers
 * than the pool has connections run at once, /ready answers 200, an outbox row is published,
 * and no message is retried for lack of a connection.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { on, retryDelays, serviceTopology, type MessagingTables, type ServiceTopology } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import {
  Cleanup,
  createMessagingDatabase,
  insertOutboxRows,
  metricValue,
  orderCreatedEvents,
  rawPublisher,
  startTestService,
  tapExchange,
  testPool,
  testSettings,
  type TestService,
} from './support/harness.ts';

const POOL_SIZE = 10;
const MESSAGES = 40;
const HANDLER = 'test.slow-gateway';

const cleanup = new Cleanup();
let servers: TestServers;
let topology: ServiceTopology;
let running: TestService<MessagingTables>;
let databaseUrl: string;
let exchange: string;
let active = 0;
let mostActive = 0;
const handled = new Set<string>();

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('bounded_handlers');
  cleanup.defer(() => database.drop());
  databaseUrl = database.url;
  const names = testNames('bounded-handlers');
  exchange = names.exchange;
  const env = { DATABASE_URL: database.url, DATABASE_POOL_SIZE: String(POOL_SIZE), RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix };
  topology = serviceTopology({ exchange: names.exchange, queuePrefix: names.queuePrefix, service: 'payment', consumes: ['OrderCreated'], retryDelaysMs: retryDelays(testSettings(env)) });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, topology));
  running = await startTestService<MessagingTables>({
    env,
    handlers: () => [
      on<MessagingTables, 'OrderCreated'>(
        'OrderCreated',
        HANDLER,
        async ({ event, trx }) => {
          active++;
          mostActive = Math.max(mostActive, active);
          try {
            // A slow gateway, waited on inside the transaction: the connection is held meanwhile.
            await sql`select pg_sleep(0.3)`.execute(trx);
          } finally {
            active--;
          }
          handled.add(event.eventId);
        },
        { batch: false },
      ),
    ],
  });
  cleanup.defer(() => running.service.stop());
});

afterAll(() => cleanup.run());

test('with a backlog behind slow handlers, fewer handlers than pool connections run at once, and /ready, the relay and every message get through', async () => {
  const publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
  const tap = await tapExchange(servers.amqpUrl, exchange, ['order.confirmed']);
  cleanup.defer(() => tap.close());
  const events = orderCreatedEvents(MESSAGES);
  await Promise.all(events.map((event) => publisher.publishEvent(topology.exchange, event)));

  await waitFor(() => active >= 2, { message: 'handlers running side by side' });
  expect((await fetch(`${running.service.url}/ready`)).status, '/ready while the handlers are busy').toBe(200);
  // An outbox row written meanwhile (as a handler of another type or an HTTP request would) is published.
  const pool = testPool(databaseUrl, 1);
  cleanup.defer(() => pool.end());
  const [confirmed] = orderCreatedEvents(1).map((event) => ({ ...event, type: 'OrderConfirmed' as const, eventId: event.eventId }));
  await insertOutboxRows(pool, [confirmed as never]);
  running.service.relay.wake();
  await waitFor(() => tap.counts.has(confirmed!.eventId), { message: 'the relay to publish while the handlers are busy' });
  const stillQueued = MESSAGES - handled.size;
  expect(stillQueued, 'messages still queued once the relay had published (it did not wait behind the whole backlog)').toBeGreaterThan(0);

  await waitFor(() => handled.size === MESSAGES, { message: `all ${MESSAGES} messages handled` });
  expect(mostActive, `handlers at once, with a pool of ${POOL_SIZE}`).toBeLessThan(POOL_SIZE);
  expect(mostActive).toBeGreaterThanOrEqual(2);
  expect(await metricValue(running.service.url, 'messages_total', { handler: HANDLER, outcome: 'retried' })).toBe(0);
  expect(await metricValue(running.service.url, 'messages_total', { handler: HANDLER, outcome: 'handled' })).toBe(MESSAGES);
});
