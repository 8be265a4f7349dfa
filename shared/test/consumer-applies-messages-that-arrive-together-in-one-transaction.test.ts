/**
 * Contract: messages that arrive while the consumer's transaction is running are applied
 * together in the next one, and batching changes nothing else.
 * - every one is applied once, in one transaction, and a copy of one of them in the same
 *   batch is recognised as a duplicate;
 * - a message whose handler fails does not take the others with it: they are applied once,
 *   it alone is dead-lettered;
 * - a handler's log lines are written when its transaction commits, so the batch that rolled
 *   back and was replayed message by message logs each change once.
 */
import type { Generated } from 'kysely';
import type pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newEvent, on, PermanentFailure, type Envelope, type MessagingTables } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, metricValue, orderCreated, rawPublisher, startTestService, testPool, type RawPublisher, type TestService } from './support/harness.ts';

interface EffectsDb extends MessagingTables {
  effects: { id: Generated<number>; event_id: string };
}

const HANDLER = 'test.record-effect';
const POISON_EMAIL = 'poison@example.com';

const cleanup = new Cleanup();
let servers: TestServers;
let running: TestService<EffectsDb>;
let pool: pg.Pool;
let publisher: RawPublisher;
let exchange: string;
/** Every line the service logged, parsed. */
const logLines: { eventId?: string; msg: string }[] = [];
/** A delivery of this event holds its transaction open until released, so the next messages gather behind it. */
let gate: { eventId: string; entered: boolean; released: Promise<void> } | undefined;

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('consumer_batch');
  cleanup.defer(() => database.drop());
  pool = testPool(database.url);
  cleanup.defer(() => pool.end());
  await pool.query('create table effects (id bigint generated always as identity primary key, event_id uuid not null)');
  const names = testNames('consumer-batch');
  exchange = names.exchange;
  running = await startTestService<EffectsDb>({
    env: {
      DATABASE_URL: database.url,
      RABBITMQ_URL: servers.amqpUrl,
      ORDER_EXCHANGE: names.exchange,
      QUEUE_PREFIX: names.queuePrefix,
      CONSUMER_PREFETCH: '64',
      CONSUMER_BATCH_SIZE: '32',
      MAX_DELIVERY_ATTEMPTS: '1',
    },
    logger: pino({ level: 'info' }, { write: (line: string) => logLines.push(JSON.parse(line) as (typeof logLines)[number]) }),
    handlers: () => [
      on<EffectsDb, 'OrderCreated'>('OrderCreated', HANDLER, async ({ event, trx, emit, log }) => {
        if (event.payload.customerEmail === POISON_EMAIL) throw new PermanentFailure(`customer ${POISON_EMAIL} is refused`);
        await trx.insertInto('effects').values({ event_id: event.eventId }).execute();
        log.info('effect recorded');
        await emit(newEvent('PaymentFailed', event, { reason: 'declined', amountMinor: event.payload.amountMinor, currency: event.payload.currency }));
        if (gate?.eventId === event.eventId && !gate.entered) {
          gate.entered = true;
          await gate.released;
        }
      }),
    ],
  });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, running.service.topology!));
  cleanup.defer(() => running.service.stop());
  publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
});

afterAll(() => cleanup.run());

const outcome = (name: string) => metricValue(running.service.url, 'messages_total', { handler: HANDLER, outcome: name });

/** Publishes `batch` while a first message holds the consumer's transaction open, then lets it go. */
async function arriveTogether(batch: readonly Envelope[]): Promise<void> {
  const first = orderCreated();
  let release!: () => void;
  gate = { eventId: first.eventId, entered: false, released: new Promise<void>((resolve) => (release = resolve)) };
  await publisher.publishEvent(exchange, first);
  await waitFor(() => gate!.entered, { message: 'the first message inside its transaction' });
  for (const event of batch) await publisher.publishEvent(exchange, event);
  // Nothing left ready in the queue: the broker has delivered everything to the consumer, which holds it behind the gate.
  const queue = running.service.topology!.queue;
  await waitFor(async () => (await publisher.channel.checkQueue(queue)).messageCount === 0, { message: 'every message delivered to the consumer' });
  release();
}

/**
 * Six good messages and a poison one fourth, arriving together; resolves once every good one
 * is handled. The three ahead of the poison run their handler in the batch that rolls back,
 * then again alone.
 */
async function arriveWithPoison(): Promise<{ events: Envelope[]; poison: Envelope }> {
  const handledBefore = await outcome('handled');
  const events = Array.from({ length: 6 }, () => orderCreated());
  const poison = orderCreated();
  (poison.payload as { customerEmail: string }).customerEmail = POISON_EMAIL;
  await arriveTogether([...events.slice(0, 3), poison, ...events.slice(3)]);
  await waitFor(async () => (await outcome('handled')) === handledBefore + 1 + events.length, { message: 'every good message handled' });
  return { events, poison };
}

async function effectsOf(events: readonly Envelope[]) {
  const { rows } = await pool.query<{ event_id: string; transactions: number; rows: number }>(
    'select event_id, count(distinct xmin::text)::int as transactions, count(*)::int as rows from effects where event_id = any($1::uuid[]) group by event_id',
    [events.map((event) => event.eventId)],
  );
  return rows;
}

describe('messages that arrive together', () => {
  test('are applied once each in one transaction, and a copy among them is a duplicate', async () => {
    const handledBefore = await outcome('handled');
    const duplicateBefore = await outcome('duplicate');
    const events = Array.from({ length: 10 }, () => orderCreated());
    await arriveTogether([...events, events[3]!]);

    await waitFor(async () => (await outcome('handled')) === handledBefore + 1 + events.length, { message: 'every message handled' });
    await waitFor(async () => (await outcome('duplicate')) === duplicateBefore + 1, { message: 'the copy recognised as a duplicate' });
    const effects = await effectsOf(events);
    expect(effects).toHaveLength(events.length);
    expect(effects.every((effect) => effect.rows === 1)).toBe(true);
    const { rows } = await pool.query<{ transactions: number }>('select count(distinct xmin::text)::int as transactions from effects where event_id = any($1::uuid[])', [
      events.map((event) => event.eventId),
    ]);
    // One, unless the last deliveries were still in the socket when the gate opened.
    expect(rows[0]!.transactions).toBeLessThanOrEqual(2);
    const emitted = await pool.query<{ n: number }>("select count(*)::int as n from outbox where envelope->>'orderId' = any($1)", [events.map((event) => event.orderId)]);
    expect(emitted.rows[0]!.n).toBe(events.length);
  });

  test('do not share the fate of one that fails: it alone is dead-lettered, the others are applied once', async () => {
    const deadBefore = await outcome('dead_lettered');
    const { events, poison } = await arriveWithPoison();

    await waitFor(async () => (await outcome('dead_lettered')) === deadBefore + 1, { message: 'the poison dead-lettered' });
    const effects = await effectsOf(events);
    expect(effects).toHaveLength(events.length);
    expect(effects.every((effect) => effect.rows === 1)).toBe(true);
    expect(await effectsOf([poison])).toEqual([]);
  });

  test('log what committed: the batch that rolled back and was replayed logs each change once', async () => {
    const { events, poison } = await arriveWithPoison();

    const recorded = (eventId: string) => logLines.filter((line) => line.eventId === eventId && line.msg === 'effect recorded').length;
    expect(events.map((event) => recorded(event.eventId))).toEqual(events.map(() => 1));
    expect(recorded(poison.eventId)).toBe(0);
  });
});
