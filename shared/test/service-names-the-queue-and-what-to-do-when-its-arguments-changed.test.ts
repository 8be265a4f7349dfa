/**
 * Contract: a queue left by an older version of the topology (here: a main queue without the
 * delivery limit and dead-letter target) cannot be redeclared with the new arguments; the
 * broker refuses with 406. Startup fails at once, and the error names the queue and says what
 * an operator can do about it.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { on, retryDelays, serviceTopology, type MessagingTables, type ServiceTopology } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, startTestService, testSettings } from './support/harness.ts';

const cleanup = new Cleanup();
let servers: TestServers;
let env: Record<string, string>;
let topology: ServiceTopology;

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('old_queue');
  cleanup.defer(() => database.drop());
  const names = testNames('old-queue');
  env = { DATABASE_URL: database.url, RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix };
  topology = serviceTopology({ exchange: names.exchange, queuePrefix: names.queuePrefix, service: 'payment', consumes: ['OrderCreated'], retryDelaysMs: retryDelays(testSettings(env)) });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, topology));
});

afterAll(() => cleanup.run());

test('a main queue declared by an older version makes startup fail with an error naming the queue and what to do', async () => {
  const connection = await amqp.connect(servers.amqpUrl);
  cleanup.defer(() => connection.close());
  const channel = await connection.createChannel();
  // The main queue as the topology declared it before it had a delivery limit and a dead-letter target.
  await channel.assertQueue(topology.queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });

  const failed = await startTestService<MessagingTables>({ env, handlers: () => [on('OrderCreated', 'test.noop', async () => {})] }).then(
    (running) => {
      cleanup.defer(() => running.service.stop());
      return undefined;
    },
    (error: unknown) => error as Error,
  );
  const message = failed?.message ?? 'the service started';
  expect(message).toContain(`queue ${topology.queue} exists with other arguments`);
  expect(message).toMatch(/delete it/);
  expect(message).toMatch(/new QUEUE_PREFIX/);
});
