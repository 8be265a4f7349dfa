/**
 * Contract: every dead letter is counted by event type (dead_letters_total), and one of a
 * compensation handler (a refund, a stock release: declared with `compensation: true`) is
 * loud on its own: compensations_dead_lettered_total and a warning line that names the order
 * and how to replay it, because until it is replayed the customer keeps a charge or stock
 * stays held. Other dead letters stay as quiet as before. The depth of the dead-letter queue,
 * read from the broker, is a metric too: unlike the counters it survives a restart.
 */
import { pino } from 'pino';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newEvent, on, PermanentFailure, type Envelope, type MessagingTables } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestDatabase, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, metricValue, rawPublisher, startTestService, type RawPublisher, type TestService } from './support/harness.ts';

const cleanup = new Cleanup();
let servers: TestServers;
let database: TestDatabase;
let running: TestService<MessagingTables>;
let publisher: RawPublisher;
let exchange: string;
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  servers = await testServers();
  database = await createMessagingDatabase('compensation_loud');
  cleanup.defer(() => database.drop());
  const names = testNames('compensation-loud');
  exchange = names.exchange;
  running = await startTestService({
    env: { DATABASE_URL: database.url, DATABASE_POOL_SIZE: '3', RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix },
    handlers: () => [
      on('OrderCancelled', 'test.release', async ({ event }) => {
        throw new PermanentFailure(`no stock table for ${event.orderId}`);
      }, { compensation: true }),
      on('OrderConfirmed', 'test.email', async () => {
        throw new PermanentFailure('mail server refused');
      }),
    ],
    logger: pino({ level: 'info' }, { write: (line: string) => logLines.push(JSON.parse(line) as Record<string, unknown>) }),
  });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, running.service.topology!));
  cleanup.defer(() => running.service.stop());
  publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
});

afterAll(() => cleanup.run());

const saga = () => ({ sagaId: v7(), orderId: v7() });
const lines = { customerEmail: 'ada@example.com', items: [{ sku: 'SKU-1', qty: 1 }], amountMinor: 1250, currency: 'EUR' as const };

async function deadLettered(event: Envelope): Promise<void> {
  await publisher.publishEvent(exchange, event);
  await waitFor(() => logLines.some((line) => line.msg === 'message dead-lettered' && line.messageId === event.eventId), { message: `${event.type} dead-lettered` });
}

describe('a dead-lettered compensation', () => {
  test('is counted by type, as a compensation, and logged as a warning naming its order and the replay command', async () => {
    const cancelled = newEvent('OrderCancelled', saga(), { reason: 'timeout', ...lines });
    await deadLettered(cancelled);

    const metrics = running.service.url;
    expect(await metricValue(metrics, 'dead_letters_total', { type: 'OrderCancelled', handler: 'test.release' })).toBe(1);
    expect(await metricValue(metrics, 'compensations_dead_lettered_total', { type: 'OrderCancelled', handler: 'test.release' })).toBe(1);
    const warning = logLines.find((line) => line.msg?.toString().startsWith('compensation dead-lettered') && line.eventId === cancelled.eventId);
    expect(warning).toMatchObject({ level: 40, orderId: cancelled.orderId, sagaId: cancelled.sagaId, type: 'OrderCancelled', handler: 'test.release' });
    expect(warning!.msg).toContain(`order ${cancelled.orderId}`);
    expect(warning!.msg).toContain(`npm run dlq -- replay ${cancelled.eventId}`);
    // The dead-letter line itself now says what and whose it was.
    expect(logLines.find((line) => line.msg === 'message dead-lettered' && line.messageId === cancelled.eventId)).toMatchObject({ type: 'OrderCancelled', orderId: cancelled.orderId });
  });

  test('a dead letter of any other handler is counted by type, but not as a compensation, and no warning names its order', async () => {
    const confirmed = newEvent('OrderConfirmed', saga(), lines);
    await deadLettered(confirmed);

    const metrics = running.service.url;
    expect(await metricValue(metrics, 'dead_letters_total', { type: 'OrderConfirmed', handler: 'test.email' })).toBe(1);
    expect(await metricValue(metrics, 'compensations_dead_lettered_total', { type: 'OrderConfirmed' })).toBe(0);
    expect(logLines.filter((line) => line.msg?.toString().startsWith('compensation dead-lettered') && line.orderId === confirmed.orderId)).toEqual([]);
  });

  test('a body that is not an envelope is counted with type "unknown"', async () => {
    const id = v7();
    await publisher.publish(exchange, 'order.cancelled', '{"not": "an envelope"}', { messageId: id });
    await waitFor(() => logLines.some((line) => line.msg === 'message dead-lettered' && line.messageId === id), { message: 'the bad body dead-lettered' });
    expect(await metricValue(running.service.url, 'dead_letters_total', { type: 'unknown', handler: 'none' })).toBe(1);
  });

  test("the metrics say how many messages wait in the service's dead-letter queue now, read from the broker", async () => {
    // The three dead letters of the tests above, none replayed or purged.
    expect(await metricValue(running.service.url, 'dead_letter_queue_messages')).toBe(3);
  });
});
