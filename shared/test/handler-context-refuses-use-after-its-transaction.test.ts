/**
 * Contract: a handler's context lives as long as its transaction. An event emitted once the
 * handler has returned (a promise it did not await, a timer) would be silently lost, since
 * the outbox rows were written with the commit; `emit` throws instead. So does a query on
 * `trx` (Kysely refuses a transaction that has ended).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newEvent, on, type HandlerContext, type MessagingTables } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, orderCreated, rawPublisher, startTestService, type RawPublisher } from './support/harness.ts';

const cleanup = new Cleanup();
let publisher: RawPublisher;
let exchange: string;
/** The context of each handled event, kept past its handler's return. */
const kept = new Map<string, HandlerContext<MessagingTables, 'OrderCreated'>>();

beforeAll(async () => {
  const servers = await testServers();
  const database = await createMessagingDatabase('handler_context');
  cleanup.defer(() => database.drop());
  const names = testNames('handler-context');
  exchange = names.exchange;
  const running = await startTestService({
    env: { DATABASE_URL: database.url, DATABASE_POOL_SIZE: '4', RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix },
    handlers: () => [
      on<MessagingTables, 'OrderCreated'>('OrderCreated', 'test.keeps-its-context', async (context) => {
        kept.set(context.event.eventId, context);
      }),
    ],
  });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, running.service.topology!));
  cleanup.defer(() => running.service.stop());
  publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
});

afterAll(() => cleanup.run());

describe("a handler's context after its transaction", () => {
  test('refuses an emit, rather than losing the event', async () => {
    const event = orderCreated();
    await publisher.publishEvent(exchange, event);
    const context = await waitFor(() => kept.get(event.eventId), { message: 'the event handled' });
    // The handler returned; its transaction commits (or has committed) without waiting for anything it does now.
    await waitFor(async () => (await context.trx.selectFrom('outbox').select('id').execute().then(() => false, () => true)), { message: 'the transaction ended' });

    const late = newEvent('PaymentFailed', event, { reason: 'declined', amountMinor: 1, currency: 'EUR' });
    await expect(context.emit(late)).rejects.toThrow(/after its transaction/);
    await expect(context.trx.selectFrom('outbox').select('id').execute()).rejects.toThrow(/already committed/);
  });
});
