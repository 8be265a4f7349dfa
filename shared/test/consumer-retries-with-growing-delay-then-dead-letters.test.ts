/**
 * Contract: a handler that throws is retried through the delay queues with a growing delay
 * (RETRY_BASE_DELAY_MS doubled per attempt, the attempt number in `x-attempt`), and after
 * MAX_DELIVERY_ATTEMPTS the message goes to the service's dead-letter queue with the reason
 * in `x-dead-letter-reason`. A message that can never succeed (not JSON, not an envelope,
 * an unknown type, a type this service has no handler for) is dead-lettered at once, on
 * attempt 1, with its reason, and no handler ever sees it; so is one whose handler throws
 * PermanentFailure. A serialization failure or deadlock runs the transaction again at once,
 * up to three times, spending no attempt.
 */
import type { ChannelModel, ConsumeMessage, GetMessage } from 'amqplib';
import amqp from 'amqplib';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  Broker,
  Consumer,
  createDatabase,
  declareTopology,
  Headers,
  InfrastructureFailure,
  newEvent,
  on,
  Outbox,
  PermanentFailure,
  retryDelays,
  serviceTopology,
  type MessagingTables,
  type ServiceTopology,
} from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import { Cleanup, inspectorChannel, createMessagingDatabase, orderCreated, rawPublisher, silentLogger, testSettings, type RawPublisher } from './support/harness.ts';

const HANDLER = 'test.always-fails';
// Delays of 100, 200 and 400 ms: short, yet far enough apart that scheduling noise on a busy machine cannot reorder the gaps.
const settings = testSettings({ RETRY_BASE_DELAY_MS: '100', MAX_DELIVERY_ATTEMPTS: '4' });

/** Failures of the outage case: more than MAX_DELIVERY_ATTEMPTS, and past the longest delay. */
const OUTAGE_FAILURES = 5;
/** Serialization failures in a row that the consumer absorbs by running the transaction again at once. */
const CONFLICTS = 3;

const cleanup = new Cleanup();
let servers: TestServers;
let topology: ServiceTopology;
let publisher: RawPublisher;
let inspector: amqp.Channel;
/** Every delivery the consumer took from its queue, with the time the handler was called (if it was). */
const deliveries: { message: ConsumeMessage }[] = [];
const handlerCalls = new Map<string, number[]>();
let db: ReturnType<typeof createDatabase<MessagingTables>>;

/** The connection as the consumer sees it, except that every delivery is also recorded here. */
function recordingDeliveries(connection: ChannelModel): ChannelModel {
  return new Proxy(connection, {
    get(target, property) {
      if (property !== 'createConfirmChannel') return Reflect.get(target, property);
      return async (...args: Parameters<ChannelModel['createConfirmChannel']>) => {
        const channel = await target.createConfirmChannel(...args);
        const consume = channel.consume.bind(channel);
        channel.consume = (queue, onMessage, options) =>
          consume(queue, (message) => {
            if (message) deliveries.push({ message });
            onMessage(message);
          }, options);
        return channel;
      };
    },
  });
}

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('consumer_retry');
  cleanup.defer(() => database.drop());
  const names = testNames('consumer-retry');
  // The consumer as startService builds it: topology and retry schedule from the settings.
  topology = serviceTopology({ exchange: names.exchange, queuePrefix: names.queuePrefix, service: 'payment', consumes: ['OrderCreated'], retryDelaysMs: retryDelays(settings) });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, topology));
  db = createDatabase<MessagingTables>(database.url, 3);
  cleanup.defer(() => db.close());
  const consumer = new Consumer<MessagingTables>({
    topology,
    handlers: [
      on('OrderCreated', HANDLER, async ({ event }) => {
        handlerCalls.set(event.eventId, [...(handlerCalls.get(event.eventId) ?? []), performance.now()]);
        if (event.payload.customerEmail.startsWith('unknown')) throw new PermanentFailure(`no customer ${event.payload.customerEmail}`);
        if (event.payload.customerEmail.startsWith('conflict')) {
          if (handlerCalls.get(event.eventId)!.length <= CONFLICTS) throw Object.assign(new Error('could not serialize access due to concurrent update'), { code: '40001' });
          return;
        }
        if (event.payload.customerEmail.startsWith('outage')) {
          if (handlerCalls.get(event.eventId)!.length <= OUTAGE_FAILURES) throw new InfrastructureFailure(`mail server unreachable for ${event.eventId}`);
          return;
        }
        throw new Error(`card processor unavailable for ${event.eventId}`);
      }),
    ],
    outbox: new Outbox(db.db, { onCommit: () => {}, notify: false }),
    prefetch: 8,
    batchSize: settings.CONSUMER_BATCH_SIZE,
    maxAttempts: settings.MAX_DELIVERY_ATTEMPTS,
    logger: silentLogger,
  });
  const broker = await Broker.connect(servers.amqpUrl, { logger: silentLogger, topology: (connection) => declareTopology(connection, names.exchange, topology) });
  cleanup.defer(() => broker.close());
  await broker.add({ attach: (connection) => consumer.attach(recordingDeliveries(connection)), detach: () => consumer.detach() });
  cleanup.defer(() => consumer.stop());

  publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
  inspector = await inspectorChannel(servers.amqpUrl, cleanup);
});

afterAll(() => cleanup.run());

/** Takes the dead-lettered copy of one message off the dead-letter queue, waiting for it to arrive. */
const deadLetters = new Map<string, GetMessage>();
async function deadLettered(messageId: string): Promise<GetMessage> {
  return waitFor(
    async () => {
      for (let message = await inspector.get(topology.deadLetterQueue, { noAck: true }); message; message = await inspector.get(topology.deadLetterQueue, { noAck: true })) {
        deadLetters.set(String(message.properties.messageId), message);
      }
      return deadLetters.get(messageId);
    },
    { message: `message ${messageId} in ${topology.deadLetterQueue}` },
  );
}

const totalHandlerCalls = () => [...handlerCalls.values()].reduce((sum, calls) => sum + calls.length, 0);
const deliveriesOf = (messageId: string) => deliveries.filter(({ message }) => message.properties.messageId === messageId).map(({ message }) => message);

describe('a handler that keeps failing', () => {
  test('is retried with a growing delay, then dead-lettered with its reason', async () => {
    expect(retryDelays(settings)).toEqual([100, 200, 400]);
    const event = orderCreated();
    await publisher.publishEvent(topology.exchange, event);

    const dead = await deadLettered(event.eventId);
    const copies = deliveriesOf(event.eventId);
    // The attempt the handler was on each time: no header on the first delivery, then x-attempt.
    expect(copies.map((message) => message.properties.headers?.[Headers.attempt] ?? 1)).toEqual([1, 2, 3, 4]);
    const calls = handlerCalls.get(event.eventId)!;
    expect(calls).toHaveLength(4);
    const gaps = calls.slice(1).map((at, index) => at - calls[index]!);
    retryDelays(settings).forEach((delay, index) => expect(gaps[index], `gap before attempt ${index + 2}`).toBeGreaterThanOrEqual(delay));
    expect(gaps[1]).toBeGreaterThan(gaps[0]!);
    expect(gaps[2]).toBeGreaterThan(gaps[1]!);

    expect(JSON.parse(dead.content.toString())).toEqual(event);
    expect(dead.properties.messageId).toBe(event.eventId);
    expect(dead.properties.headers).toMatchObject({
      [Headers.attempt]: 4,
      [Headers.reason]: `Error: card processor unavailable for ${event.eventId}`,
      [Headers.handler]: HANDLER,
      [Headers.routingKey]: 'order.created',
      [Headers.exchange]: topology.exchange,
    });
    // Retried copies carried the last error along.
    expect(copies[3]!.properties.headers?.[Headers.lastError]).toBe(`Error: card processor unavailable for ${event.eventId}`);
  });
});

describe('a handler whose dependency is down', () => {
  test('waits out the outage with a growing delay, capped at the longest, without spending an attempt', async () => {
    const created = orderCreated();
    const event = { ...created, payload: { ...created.payload, customerEmail: 'outage@example.com' } };
    await publisher.publishEvent(topology.exchange, event);

    const calls = await waitFor(() => (handlerCalls.get(event.eventId)?.length === OUTAGE_FAILURES + 1 ? handlerCalls.get(event.eventId) : undefined), {
      message: `the handler called ${OUTAGE_FAILURES + 1} times for ${event.eventId}`,
    });
    // Every copy is still on its first attempt: an outage is nobody's fault in the message.
    expect(deliveriesOf(event.eventId).map((message) => message.properties.headers?.[Headers.attempt] ?? 1)).toEqual(Array(OUTAGE_FAILURES + 1).fill(1));
    const gaps = calls.slice(1).map((at, index) => at - calls[index]!);
    // 100, 200, 400, then 400 again: each outage in a row waits the next step of the schedule, up to its longest.
    const expected = [100, 200, 400, 400, 400];
    expected.forEach((delay, index) => expect(gaps[index], `gap before call ${index + 2}`).toBeGreaterThanOrEqual(delay));
    expect(gaps[1]).toBeGreaterThan(gaps[0]!);
    expect(gaps[2]).toBeGreaterThan(gaps[1]!);
    await waitFor(async () => (await inspector.checkQueue(topology.deadLetterQueue)).messageCount === 0 && !deadLetters.has(event.eventId), { message: 'nothing dead-lettered' });
  });
});

describe('a handler whose transaction meets a serialization failure', () => {
  test('runs again at once, in the same delivery, spending no attempt', async () => {
    const created = orderCreated();
    const event = { ...created, payload: { ...created.payload, customerEmail: 'conflict@example.com' } };
    await publisher.publishEvent(topology.exchange, event);

    await waitFor(async () => (await db.db.selectFrom('processed_events').select('event_id').where('event_id', '=', event.eventId).executeTakeFirst()) !== undefined, {
      message: `${event.eventId} applied`,
    });
    expect(handlerCalls.get(event.eventId)).toHaveLength(CONFLICTS + 1);
    // No retry copy: one delivery, on its first attempt.
    expect(deliveriesOf(event.eventId).map((message) => message.properties.headers?.[Headers.attempt] ?? 1)).toEqual([1]);
  });
});

describe('a message that can never succeed', () => {
  const valid = () => orderCreated();
  const cases: { name: string; routingKey: string; body: () => string; reason: RegExp }[] = [
    { name: 'a body that is not JSON', routingKey: 'order.created', body: () => '{"eventId": ', reason: /^body is not JSON/ },
    {
      name: 'an envelope missing fields',
      routingKey: 'order.created',
      body: () => {
        const { sagaId: _sagaId, timestamp: _timestamp, ...rest } = valid();
        return JSON.stringify(rest);
      },
      reason: /^invalid envelope: .*sagaId/,
    },
    { name: 'an unknown event type', routingKey: 'order.created', body: () => JSON.stringify({ ...valid(), type: 'OrderTeleported' }), reason: /^unknown event type "OrderTeleported"/ },
    { name: 'a payload that does not match its type', routingKey: 'order.created', body: () => JSON.stringify({ ...valid(), payload: { amountMinor: -1 } }), reason: /^invalid OrderCreated payload/ },
    {
      name: 'a type this service has no handler for',
      routingKey: 'order.created',
      body: () => JSON.stringify(newEvent('PaymentFailed', { sagaId: v7(), orderId: v7() }, { reason: 'declined', amountMinor: 1, currency: 'EUR' })),
      reason: /^no handler for PaymentFailed in queue /,
    },
  ];

  test.each(cases)('is dead-lettered at once, on attempt 1, with its reason: $name', async ({ routingKey, body, reason }) => {
    const messageId = v7();
    const handlerCallsBefore = totalHandlerCalls();
    await publisher.publish(topology.exchange, routingKey, body(), { messageId });

    const dead = await deadLettered(messageId);
    expect(dead.properties.headers?.[Headers.attempt]).toBe(1);
    expect(String(dead.properties.headers?.[Headers.reason])).toMatch(reason);
    expect(deliveriesOf(messageId)).toHaveLength(1);
    expect(totalHandlerCalls()).toBe(handlerCallsBefore);
  });

  test('is dead-lettered at once, on attempt 1, with its reason, when the handler throws PermanentFailure', async () => {
    const created = orderCreated();
    const event = { ...created, payload: { ...created.payload, customerEmail: 'unknown@example.com' } };
    await publisher.publishEvent(topology.exchange, event);

    const dead = await deadLettered(event.eventId);
    expect(dead.properties.headers).toMatchObject({ [Headers.attempt]: 1, [Headers.reason]: 'PermanentFailure: no customer unknown@example.com', [Headers.handler]: HANDLER });
    expect(handlerCalls.get(event.eventId)).toHaveLength(1);
  });

  test('leaves the service queue and its retry queues empty', async () => {
    for (const queue of [topology.queue, ...topology.retryQueues.map((retry) => retry.name)]) {
      expect((await inspector.checkQueue(queue)).messageCount, queue).toBe(0);
    }
  });
});
