import { Type } from 'typebox';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadConfig, messagingSettings, migrateDatabase, newEvent, on, startService, type MessagingTables, type RunningService } from '../src/internal.ts';
import { createTestDatabase, deleteTopology, testNames, testServers, waitFor, type TestDatabase } from '../src/testing/index.ts';
import { v7 } from 'uuid';

let database: TestDatabase;
let service: RunningService;
let amqpUrl: string;
const seen: string[] = [];

beforeAll(async () => {
  const servers = await testServers();
  amqpUrl = servers.amqpUrl;
  database = await createTestDatabase('smoke');
  await migrateDatabase({ databaseUrl: database.url, service: 'none' });
  const names = testNames('smoke');
  const config = loadConfig(Type.Object(messagingSettings('payment', 0)), {
    DATABASE_URL: database.url, RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix, LOG_LEVEL: 'warn',
  });
  service = await startService<MessagingTables, typeof config>({
    name: 'payment',
    handlers: () => [on('OrderCreated', 'smoke.record', async ({ event }) => { seen.push(event.eventId); })],
  }, config);
});

afterAll(async () => {
  await service?.stop();
  if (service?.topology) await deleteTopology(amqpUrl, service.topology);
  await database?.drop();
});

test('an event written to the outbox reaches the handler once', async () => {
  const ids = { sagaId: v7(), orderId: v7() };
  const event = newEvent('OrderCreated', ids, { customerId: null, customerEmail: 'a@b.c', items: [{ sku: 'X', qty: 1 }], amountMinor: 500, currency: 'USD' });
  const outbox = (service as unknown as { relay: { wake(): void } });
  await service.db.transaction().execute(async (trx) => {
    await trx.insertInto('outbox').values({ event_id: event.eventId, routing_key: 'order.created', envelope: JSON.stringify(event), headers: '{}', published_at: null, last_error: null }).execute();
  });
  outbox.relay.wake();
  await waitFor(() => seen.includes(event.eventId), { message: 'handler saw the event' });
  expect(seen.filter((id) => id === event.eventId)).toHaveLength(1);
});
