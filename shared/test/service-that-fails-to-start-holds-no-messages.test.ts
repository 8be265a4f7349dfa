/**
 * Contract: a service starts consuming only once everything else has started (HTTP is
 * listening). A start that fails before that (here: the port is taken) has never taken a
 * message from its queue, and leaves no consumer behind on the broker.
 */
import { createServer, type Server } from 'node:net';
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { on, retryDelays, serviceTopology, type MessagingTables, type ServiceTopology } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, orderCreated, rawPublisher, startTestService, testSettings } from './support/harness.ts';

const cleanup = new Cleanup();
let servers: TestServers;
let env: Record<string, string>;
let topology: ServiceTopology;
const handled: string[] = [];
const handlers = () => [on<MessagingTables, 'OrderCreated'>('OrderCreated', 'test.record', async ({ event }) => void handled.push(event.eventId))];

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('failed_start');
  cleanup.defer(() => database.drop());
  const names = testNames('failed-start');
  env = { DATABASE_URL: database.url, RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix };
  topology = serviceTopology({ exchange: names.exchange, queuePrefix: names.queuePrefix, service: 'payment', consumes: ['OrderCreated'], retryDelaysMs: retryDelays(testSettings(env)) });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, topology));
});

afterAll(() => cleanup.run());

test('a service whose HTTP port is taken fails to start without taking a message from its queue or leaving a consumer behind', async () => {
  // A first, good start declares the queues; it is stopped before the message is published.
  const good = await startTestService({ env, handlers });
  await good.service.stop();
  const publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
  await publisher.publishEvent(topology.exchange, orderCreated());

  const taken: Server = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  cleanup.defer(() => new Promise((resolve) => taken.close(resolve)));
  const port = String((taken.address() as { port: number }).port);
  const failed = await startTestService({ env: { ...env, PORT: port }, handlers }).then(
    (running) => {
      cleanup.defer(() => running.service.stop());
      return undefined;
    },
    (error: unknown) => error as Error,
  );
  expect(failed?.message ?? 'the service started').toMatch(/EADDRINUSE/);

  const connection = await amqp.connect(servers.amqpUrl);
  cleanup.defer(() => connection.close());
  const channel = await connection.createChannel();
  expect(await channel.checkQueue(topology.queue)).toMatchObject({ messageCount: 1, consumerCount: 0 });
  expect(handled).toEqual([]);
});
