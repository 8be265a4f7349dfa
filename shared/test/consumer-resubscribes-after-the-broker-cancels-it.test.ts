/**
 * Contract: when the broker cancels the service's consumer (its queue was deleted, or a
 * quorum queue lost its leader), the service re-declares its queue and subscribes again
 * by itself; until it consumes again, /ready answers 503. Here the queue is deleted and an
 * impostor with other arguments takes its name, so re-declaring fails until the impostor is
 * gone: the service keeps trying, not ready meanwhile, then handles messages again.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { on, retryDelays, serviceTopology, type MessagingTables, type ServiceTopology } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, orderCreated, rawPublisher, startTestService, testSettings, type TestService } from './support/harness.ts';

const cleanup = new Cleanup();
let servers: TestServers;
let topology: ServiceTopology;
let running: TestService<MessagingTables>;
const handled = new Set<string>();

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('consumer_cancel');
  cleanup.defer(() => database.drop());
  const names = testNames('consumer-cancel');
  const env = { DATABASE_URL: database.url, RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix };
  topology = serviceTopology({ exchange: names.exchange, queuePrefix: names.queuePrefix, service: 'payment', consumes: ['OrderCreated'], retryDelaysMs: retryDelays(testSettings(env)) });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, topology));
  running = await startTestService<MessagingTables>({ env, handlers: () => [on('OrderCreated', 'test.record', async ({ event }) => void handled.add(event.eventId))] });
  cleanup.defer(() => running.service.stop());
});

afterAll(() => cleanup.run());

const readiness = async () => (await fetch(`${running.service.url}/ready`)).status;

test('after the broker cancels its consumer the service is not ready, then re-declares its queue, subscribes again and handles messages', async () => {
  expect(await readiness()).toBe(200);
  const connection = await amqp.connect(servers.amqpUrl);
  cleanup.defer(() => connection.close().catch(() => {}));
  const channel = await connection.createChannel();
  // Sent back to back: the impostor exists before the service can re-declare the queue.
  await Promise.all([channel.deleteQueue(topology.queue), channel.assertQueue(topology.queue, { durable: true, arguments: { 'x-queue-type': 'classic' } })]);

  await waitFor(async () => (await readiness()) === 503, { message: '/ready to answer 503 while the consumer is cancelled' });
  await channel.deleteQueue(topology.queue);
  await waitFor(async () => (await readiness()) === 200, { message: '/ready to answer 200 again once the consumer is back' });
  expect(await channel.checkQueue(topology.queue)).toMatchObject({ consumerCount: 1 });

  const publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
  const event = orderCreated();
  await publisher.publishEvent(topology.exchange, event);
  await waitFor(() => handled.has(event.eventId), { message: 'a message published after the cancel to be handled' });
});
