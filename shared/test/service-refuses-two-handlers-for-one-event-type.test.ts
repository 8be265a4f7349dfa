/**
 * Contract: one service has at most one handler per event type. Two would mean one of them
 * silently never runs (the consumer routes by type), so startup refuses them with an error
 * that names both, before anything connects.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { on, retryDelays, serviceTopology, type MessagingTables } from '../src/internal.ts';
import { testNames, testServers, deleteTopology, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, startTestService, testSettings } from './support/harness.ts';

const cleanup = new Cleanup();
let servers: TestServers;
let env: Record<string, string>;

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('two_handlers');
  cleanup.defer(() => database.drop());
  const names = testNames('two-handlers');
  env = { DATABASE_URL: database.url, RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix };
  // What a service that did start would have declared.
  const topology = serviceTopology({ exchange: names.exchange, queuePrefix: names.queuePrefix, service: 'payment', consumes: ['OrderCreated', 'PaymentFailed'], retryDelaysMs: retryDelays(testSettings(env)) });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, topology));
});

afterAll(() => cleanup.run());

test('a service with two handlers for one event type does not start, and the error names both handlers', async () => {
  const starting = startTestService<MessagingTables>({
    env,
    handlers: () => [
      on('OrderCreated', 'test.charge', async () => {}),
      on('PaymentFailed', 'test.other', async () => {}),
      on('OrderCreated', 'test.charge-again', async () => {}),
    ],
  });
  // On old code the service starts: stop it so the test cleans up either way.
  const started = await starting.then(
    (running) => {
      cleanup.defer(() => running.service.stop());
      return undefined;
    },
    (error: unknown) => error as Error,
  );
  expect(started?.message ?? 'the service started').toMatch(/two handlers for OrderCreated: test\.charge and test\.charge-again/);
});
