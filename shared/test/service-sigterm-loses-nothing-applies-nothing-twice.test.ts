/**
 * Contract: SIGTERM in the middle of a stream of messages loses none and applies none
 * twice. A real service process (runService) is stopped by SIGTERM while messages keep
 * arriving; it stops consuming, lets the messages in hand commit and be acknowledged, and
 * exits 0. A second process takes over the rest. In the end every message's effect is in
 * the database exactly once and the queue is drained.
 */
import amqp from 'amqplib';
import type pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { retryDelays, serviceTopology, type ServiceTopology } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, orderCreatedEvents, rawPublisher, testPool, testSettings, type RawPublisher } from './support/harness.ts';
import { startFixture, type ServiceProcess } from './support/processes.ts';

const MESSAGES = 400;
const CHUNK = 20;
const SIGTERM_AFTER = 60;

const cleanup = new Cleanup();
let servers: TestServers;
let pool: pg.Pool;
let publisher: RawPublisher;
let topology: ServiceTopology;
let env: Record<string, string>;

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('service_sigterm');
  cleanup.defer(() => database.drop());
  pool = testPool(database.url);
  cleanup.defer(() => pool.end());
  await pool.query('create table effects (id bigint generated always as identity primary key, event_id uuid not null, pid integer not null)');
  const names = testNames('sigterm');
  env = {
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: '4',
    RABBITMQ_URL: servers.amqpUrl,
    ORDER_EXCHANGE: names.exchange,
    QUEUE_PREFIX: names.queuePrefix,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    CONSUMER_PREFETCH: '16',
    HANDLER_DELAY_MS: '4',
  };
  // The names the service will declare, to delete them afterwards.
  topology = serviceTopology({ exchange: names.exchange, queuePrefix: names.queuePrefix, service: 'payment', consumes: ['OrderCreated'], retryDelaysMs: retryDelays(testSettings(env)) });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, topology));
  publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
});

afterAll(() => cleanup.run());

async function startServiceProcess(): Promise<ServiceProcess> {
  const service = startFixture('effect-service.ts', env);
  cleanup.defer(() => {
    if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGKILL');
  });
  await waitFor(() => service.stdout().includes('"msg":"payment service started"') || service.child.exitCode !== null, { message: 'the service process to start' });
  expect(service.child.exitCode, service.stderr()).toBeNull();
  return service;
}

const effectCount = async () => (await pool.query<{ n: number }>('select count(*)::int as n from effects')).rows[0]!.n;

test('SIGTERM mid-stream: a second process finishes the stream, every effect is applied exactly once, the queue is drained', async () => {
  const first = await startServiceProcess();
  const events = orderCreatedEvents(MESSAGES);

  // A steady stream, in chunks, that goes on while the first process shuts down and the second starts:
  // its second half waits until the signal has been sent.
  let fed = 0;
  let signalled!: () => void;
  const sigtermSent = new Promise<void>((resolve) => (signalled = resolve));
  const feeding = (async () => {
    for (let offset = 0; offset < events.length; offset += CHUNK) {
      if (offset === MESSAGES / 2) await sigtermSent;
      await Promise.all(events.slice(offset, offset + CHUNK).map((event) => publisher.publishEvent(topology.exchange, event)));
      fed += CHUNK;
      await new Promise((resolve) => setTimeout(resolve, 60)); // pacing the load (about 300 messages/s), not synchronising
    }
  })();

  await waitFor(async () => (await effectCount()) >= SIGTERM_AFTER, { message: `${SIGTERM_AFTER} messages handled by the first process` });
  first.child.kill('SIGTERM');
  signalled();
  expect(await first.exited, first.stderr()).toBe(0);
  expect(first.stdout()).toContain('"msg":"stopped"');
  expect(fed, 'the stream was still going when the first process stopped').toBeLessThan(MESSAGES);

  const second = await startServiceProcess();
  await feeding;
  await waitFor(async () => (await effectCount()) >= MESSAGES, { message: `all ${MESSAGES} messages handled` });
  second.child.kill('SIGTERM');
  expect(await second.exited, second.stderr()).toBe(0);

  const { rows } = await pool.query<{ effects: number; events: number; by_first: number; by_second: number; inbox: number }>(
    `select count(*)::int as effects, count(distinct event_id)::int as events,
            count(*) filter (where pid = $1)::int as by_first, count(*) filter (where pid = $2)::int as by_second,
            (select count(*)::int from processed_events) as inbox
     from effects`,
    [first.pid, second.pid],
  );
  expect(rows[0]).toMatchObject({ effects: MESSAGES, events: MESSAGES, inbox: MESSAGES });
  expect(rows[0]!.by_first).toBeGreaterThanOrEqual(SIGTERM_AFTER);
  expect(rows[0]!.by_second).toBeGreaterThan(0);
  expect(rows[0]!.by_first + rows[0]!.by_second).toBe(MESSAGES);
  const { rows: missing } = await pool.query('select id from unnest($1::uuid[]) as published(id) where id not in (select event_id from effects)', [events.map((event) => event.eventId)]);
  expect(missing).toEqual([]);

  // Both processes are gone: anything unacknowledged would be back in the queue now.
  const connection = await amqp.connect(servers.amqpUrl);
  try {
    const channel = await connection.createChannel();
    for (const queue of [topology.queue, topology.deadLetterQueue, ...topology.retryQueues.map((retry) => retry.name)]) {
      expect(await channel.checkQueue(queue), queue).toMatchObject({ messageCount: 0, consumerCount: 0 });
    }
  } finally {
    await connection.close();
  }
});
