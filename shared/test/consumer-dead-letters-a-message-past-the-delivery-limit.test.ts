/**
 * Contract: a message whose consumer dies while holding it, again and again, is not
 * redelivered forever nor dropped: once the broker has handed it out more often than
 * QUEUE_DELIVERY_LIMIT allows, it dead-letters it to the service's `.dlq` with the reason in
 * `x-death` (`delivery_limit`). RabbitMQ 4 applies a delivery limit of 20 to every quorum
 * queue and, without a dead-letter target, drops the message; RabbitMQ 3.x has no default
 * limit, so the message would circle for ever. A real service process (runService) is
 * killed with SIGKILL while its handler holds the message, three times, with the limit at 2.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { retryDelays, serviceTopology, type ServiceTopology } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import { Cleanup, inspectorChannel, createMessagingDatabase, orderCreated, rawPublisher, testPool, testSettings, type RawPublisher } from './support/harness.ts';
import { startFixture } from './support/processes.ts';

const LIMIT = 2;

const cleanup = new Cleanup();
let servers: TestServers;
let publisher: RawPublisher;
let topology: ServiceTopology;
let env: Record<string, string>;
let inspector: amqp.Channel;

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('delivery_limit');
  cleanup.defer(() => database.drop());
  const pool = testPool(database.url, 1);
  cleanup.defer(() => pool.end());
  await pool.query('create table effects (id bigint generated always as identity primary key, event_id uuid not null, pid integer not null)');
  const names = testNames('delivery-limit');
  env = {
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: '3',
    RABBITMQ_URL: servers.amqpUrl,
    ORDER_EXCHANGE: names.exchange,
    QUEUE_PREFIX: names.queuePrefix,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    CONSUMER_PREFETCH: '1',
    QUEUE_DELIVERY_LIMIT: String(LIMIT),
    // The handler holds the message far longer than the test needs to kill its process.
    HANDLER_DELAY_MS: '60000',
  };
  topology = serviceTopology({ exchange: names.exchange, queuePrefix: names.queuePrefix, service: 'payment', consumes: ['OrderCreated'], retryDelaysMs: retryDelays(testSettings(env)) });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, topology));
  publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
  inspector = await inspectorChannel(servers.amqpUrl, cleanup);
});

afterAll(() => cleanup.run());

/** Starts the service process and waits until it holds the one message: the queue has nothing ready and one consumer. */
async function holdAndKill(round: number): Promise<void> {
  const service = startFixture('effect-service.ts', env);
  cleanup.defer(() => {
    if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGKILL');
  });
  await waitFor(() => service.stdout().includes('"msg":"payment service started"') || service.child.exitCode !== null, { message: `process ${round} to start` });
  expect(service.child.exitCode, service.stderr()).toBeNull();
  await waitFor(
    async () => {
      const { messageCount, consumerCount } = await inspector.checkQueue(topology.queue);
      return messageCount === 0 && consumerCount === 1;
    },
    { message: `process ${round} to hold the message` },
  );
  service.child.kill('SIGKILL');
  await service.exited;
}

test('a message whose consumer is killed while holding it, more often than the delivery limit, ends in the dead-letter queue with reason delivery_limit', async () => {
  const event = orderCreated();
  // The first process declares the queues; the message is published once they exist.
  const first = startFixture('effect-service.ts', env);
  cleanup.defer(() => {
    if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
  });
  await waitFor(() => first.stdout().includes('"msg":"payment service started"') || first.child.exitCode !== null, { message: 'the first process to start' });
  expect(first.child.exitCode, first.stderr()).toBeNull();
  first.child.kill('SIGKILL');
  await first.exited;
  await publisher.publishEvent(topology.exchange, event);

  for (let round = 1; round <= LIMIT + 1; round++) await holdAndKill(round);

  const dead = await waitFor(async () => (await inspector.get(topology.deadLetterQueue, { noAck: true })) || undefined, {
    message: `message ${event.eventId} in ${topology.deadLetterQueue}`,
  });
  expect(dead.properties.messageId).toBe(event.eventId);
  const [death] = dead.properties.headers?.['x-death'] as { reason: string; queue: string; 'routing-keys': string[]; exchange: string }[];
  expect(death).toMatchObject({ reason: 'delivery_limit', queue: topology.queue, 'routing-keys': ['order.created'], exchange: topology.exchange });
  expect(await inspector.checkQueue(topology.queue)).toMatchObject({ messageCount: 0 });
});
