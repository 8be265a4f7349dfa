/**
 * Contract: a handler that declares effects outside its database (`externalEffects: true`: a
 * card charge, an e-mail) runs, like every handler, only once the inbox claim has answered that
 * its event is new, so a duplicate delivery never repeats the effect; and it is never batched
 * with other messages, so another message's failure
 * cannot roll back a transaction whose effect already happened outside it.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { on, type MessagingTables } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, metricValue, orderCreated, orderCreatedEvents, rawPublisher, startTestService, type RawPublisher, type TestService } from './support/harness.ts';

const HANDLER = 'test.charge-card';

const cleanup = new Cleanup();
let servers: TestServers;
let running: TestService<MessagingTables>;
let publisher: RawPublisher;
let exchange: string;
/** Each call of the handler: the event and the transaction it ran in. */
const calls: { eventId: string; transaction: string }[] = [];

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('external_effects');
  cleanup.defer(() => database.drop());
  const names = testNames('external-effects');
  exchange = names.exchange;
  running = await startTestService<MessagingTables>({
    env: { DATABASE_URL: database.url, RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix, CONSUMER_BATCH_SIZE: '64' },
    handlers: () => [
      on<MessagingTables, 'OrderCreated'>(
        'OrderCreated',
        HANDLER,
        async ({ event, trx }) => {
          const { rows } = await sql<{ id: string }>`select txid_current()::text as id`.execute(trx);
          calls.push({ eventId: event.eventId, transaction: rows[0]!.id });
        },
        { externalEffects: true },
      ),
    ],
  });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, running.service.topology!));
  cleanup.defer(() => running.service.stop());
  publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
});

afterAll(() => cleanup.run());

const outcome = (name: string) => metricValue(running.service.url, 'messages_total', { handler: HANDLER, outcome: name });

test('a duplicate of an event it applied before never reaches the handler', async () => {
  const event = orderCreated();
  await publisher.publishEvent(exchange, event);
  await waitFor(async () => (await outcome('handled')) >= 1, { message: 'the first delivery handled' });
  const duplicatesBefore = await outcome('duplicate');
  await publisher.publishEvent(exchange, event);
  await waitFor(async () => (await outcome('duplicate')) === duplicatesBefore + 1, { message: 'the second delivery recognised as a duplicate' });
  expect(calls.filter((call) => call.eventId === event.eventId)).toHaveLength(1);
});

test('messages that arrive together are each applied in a transaction of their own', async () => {
  const events = orderCreatedEvents(30);
  await Promise.all(events.map((event) => publisher.publishEvent(exchange, event)));
  const ids = new Set(events.map((event) => event.eventId));
  await waitFor(() => calls.filter((call) => ids.has(call.eventId)).length >= events.length, { message: 'every message handled' });
  const ours = calls.filter((call) => ids.has(call.eventId));
  expect(new Set(ours.map((call) => call.transaction)).size, 'transactions for 30 messages').toBe(events.length);
});
