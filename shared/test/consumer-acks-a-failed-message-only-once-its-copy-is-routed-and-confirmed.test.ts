/**
 * Contract: a message that failed is acked only once its retry or dead-letter copy has been
 * routed to a queue and confirmed by the broker. A copy that no queue takes (the retry or
 * dead-letter queue is missing: deleted by hand, or a policy in the way) is returned by the
 * broker (the copies are `mandatory`); the original then goes back to its queue at once
 * (nack with requeue), with an error log and `messages_total{outcome="requeued"}`, so it is
 * never acked into nothing and never left unacked on a live channel.
 */
import amqp from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Broker, Consumer, createDatabase, createMetrics, declareTopology, Headers, on, Outbox, retryDelays, serviceTopology, type MessagingTables, type ServiceTopology } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import { Cleanup, inspectorChannel, createMessagingDatabase, orderCreated, rawPublisher, testSettings, type RawPublisher } from './support/harness.ts';

const settings = testSettings({ RETRY_BASE_DELAY_MS: '100', MAX_DELIVERY_ATTEMPTS: '3' });
const cleanup = new Cleanup();
let servers: TestServers;
let topology: ServiceTopology;
let publisher: RawPublisher;
let inspector: amqp.Channel;
const metrics = createMetrics('test');
const logLines: { level: number; msg: string; queue?: string }[] = [];
const logger = pino({ level: 'warn' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
/** Calls of the handler per event id; the first call of each event fails. */
const calls = new Map<string, number>();

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('copy_confirmed');
  cleanup.defer(() => database.drop());
  const names = testNames('copy-confirmed');
  // A high delivery limit: the broker must not dead-letter the message itself while it goes round.
  topology = serviceTopology({ exchange: names.exchange, queuePrefix: names.queuePrefix, service: 'payment', consumes: ['OrderCreated'], retryDelaysMs: retryDelays(settings), deliveryLimit: 1000 });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, topology));
  const db = createDatabase<MessagingTables>(database.url, 3);
  cleanup.defer(() => db.close());
  const consumer = new Consumer<MessagingTables>({
    topology,
    handlers: [
      on('OrderCreated', 'test.fails-first', async ({ event }) => {
        const call = (calls.get(event.eventId) ?? 0) + 1;
        calls.set(event.eventId, call);
        if (call === 1) throw new Error('first call fails');
      }),
    ],
    outbox: new Outbox(db.db, { onCommit: () => {}, notify: false }),
    prefetch: 4,
    batchSize: 1,
    maxAttempts: settings.MAX_DELIVERY_ATTEMPTS,
    logger,
    metrics,
  });
  const broker = await Broker.connect(servers.amqpUrl, { logger, topology: (connection) => declareTopology(connection, names.exchange, topology) });
  cleanup.defer(() => broker.close());
  await broker.add(consumer);
  cleanup.defer(() => consumer.stop());

  publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
  inspector = await inspectorChannel(servers.amqpUrl, cleanup);
});

afterAll(() => cleanup.run());

const requeued = async () => (await metrics.messages.get()).values.filter((value) => value.labels.outcome === 'requeued').reduce((sum, value) => sum + value.value, 0);

test('a message whose retry queue is missing goes back to its queue at once and is handled on a later delivery', async () => {
  for (const retry of topology.retryQueues) await inspector.deleteQueue(retry.name);
  const event = orderCreated();
  await publisher.publishEvent(topology.exchange, event);

  await waitFor(() => (calls.get(event.eventId) ?? 0) >= 2, { message: 'the handler called again after its retry copy found no queue' });
  expect(await requeued()).toBeGreaterThanOrEqual(1);
  expect(logLines.some((line) => line.level >= 50 && /returned to its queue/.test(line.msg))).toBe(true);
  await waitFor(async () => (await inspector.checkQueue(topology.queue)).messageCount === 0, { message: 'the queue drained' });
});

test('a message whose dead-letter queue is missing is not lost: it reaches the dead-letter queue once that exists again', async () => {
  await inspector.deleteQueue(topology.deadLetterQueue);
  const messageId = `not-json-${Date.now()}`;
  const before = await requeued();
  await publisher.publish(topology.exchange, 'order.created', '{"eventId": ', { messageId });

  await waitFor(async () => (await requeued()) > before, { message: 'the original returned to its queue after its dead-letter copy found no queue' });
  await inspector.assertQueue(topology.deadLetterQueue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  const dead = await waitFor(async () => (await inspector.get(topology.deadLetterQueue, { noAck: true })) || undefined, { message: `${messageId} in the dead-letter queue` });
  expect(dead.properties.messageId).toBe(messageId);
  expect(String(dead.properties.headers?.[Headers.reason])).toMatch(/^body is not JSON/);
});
