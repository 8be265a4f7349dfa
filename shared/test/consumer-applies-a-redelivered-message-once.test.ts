/**
 * Contract: a message delivered twice changes the database once. The handler's inbox row,
 * its business change and the events it emits commit together; a second delivery of the
 * same eventId, whether it arrives after the first committed or while the first is still
 * in its transaction, is acknowledged and changes nothing, even when its handler would now
 * fail (the inbox claim is answered before any handler runs, and a duplicate's handler is skipped).
 */
import type { Generated } from 'kysely';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newEvent, on, type MessagingTables } from '../src/internal.ts';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, metricValue, orderCreated, rawPublisher, startTestService, testPool, type RawPublisher, type TestService } from './support/harness.ts';

interface EffectsDb extends MessagingTables {
  /** No unique key on purpose: applying an event twice would show as two rows. */
  effects: { id: Generated<number>; event_id: string };
}

const HANDLER = 'test.record-effect';

const cleanup = new Cleanup();
let servers: TestServers;
let running: TestService<EffectsDb>;
let pool: pg.Pool;
let publisher: RawPublisher;
let exchange: string;
/** Deliveries of these events wait in the handler, inside their transaction, until released. */
const gates = new Map<string, { entered: boolean; release: () => void; released: Promise<void> }>();
/** The handler refuses these events once their effect exists, as a handler whose state moved on would. */
const refusedWhenRepeated = new Set<string>();

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('consumer_dedup');
  cleanup.defer(() => database.drop());
  pool = testPool(database.url);
  cleanup.defer(() => pool.end());
  await pool.query('create table effects (id bigint generated always as identity primary key, event_id uuid not null)');
  const names = testNames('consumer-dedup');
  exchange = names.exchange;
  running = await startTestService<EffectsDb>({
    env: { DATABASE_URL: database.url, DATABASE_POOL_SIZE: '4', RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix, CONSUMER_PREFETCH: '8',
      // A transaction per message, several at once: what two instances of a service do to each other's copies.
      CONSUMER_BATCH_SIZE: '1' },
    handlers: () => [
      on<EffectsDb, 'OrderCreated'>('OrderCreated', HANDLER, async ({ event, trx, emit }) => {
        if (refusedWhenRepeated.has(event.eventId)) {
          const existing = await trx.selectFrom('effects').select('id').where('event_id', '=', event.eventId).executeTakeFirst();
          if (existing) throw new Error('this event was applied already');
        }
        await trx.insertInto('effects').values({ event_id: event.eventId }).execute();
        await emit(newEvent('PaymentFailed', event, { reason: 'declined', amountMinor: event.payload.amountMinor, currency: event.payload.currency }));
        const gate = gates.get(event.eventId);
        if (gate && !gate.entered) {
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

const outcomes = async () => ({
  handled: await metricValue(running.service.url, 'messages_total', { handler: HANDLER, outcome: 'handled' }),
  duplicate: await metricValue(running.service.url, 'messages_total', { handler: HANDLER, outcome: 'duplicate' }),
  retried: await metricValue(running.service.url, 'messages_total', { handler: HANDLER, outcome: 'retried' }),
});

/** What one event changed: its business rows and its inbox rows. */
async function changesFor(eventId: string) {
  const count = async (query: string) => Number((await pool.query<{ n: string }>(query, [eventId])).rows[0]!.n);
  return {
    effects: await count('select count(*) as n from effects where event_id = $1'),
    inbox: await count(`select count(*) as n from processed_events where event_id = $1 and handler = '${HANDLER}'`),
  };
}

/** Events the handler emitted for the event's order. */
async function emittedFor(event: { orderId: string }): Promise<number> {
  const { rows } = await pool.query<{ n: number }>("select count(*)::int as n from outbox where envelope->>'orderId' = $1", [event.orderId]);
  return rows[0]!.n;
}

describe('a message delivered twice', () => {
  test('changes the database once when the copy arrives after the first delivery committed', async () => {
    const before = await outcomes();
    const event = orderCreated();
    await publisher.publishEvent(exchange, event);
    await waitFor(async () => (await outcomes()).handled === before.handled + 1, { message: 'the first delivery handled' });
    await publisher.publishEvent(exchange, event);
    await waitFor(async () => (await outcomes()).duplicate === before.duplicate + 1, { message: 'the second delivery recognised as a duplicate' });

    expect(await changesFor(event.eventId)).toMatchObject({ effects: 1, inbox: 1 });
    expect(await emittedFor(event)).toBe(1);
  });

  test('changes the database once when the copy arrives while the first is still in its transaction', async () => {
    const before = await outcomes();
    const event = orderCreated();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const gate = { entered: false, release, released };
    gates.set(event.eventId, gate);

    await publisher.publishEvent(exchange, event);
    await waitFor(() => gate.entered, { message: 'the first delivery inside its transaction' });
    await publisher.publishEvent(exchange, event);
    // The copy's inbox insert waits on the first transaction's uncommitted key.
    await waitFor(
      async () => (await pool.query("select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'")).rowCount === 1,
      { message: 'the second delivery blocked on the inbox key' },
    );
    gate.release();
    await waitFor(async () => {
      const now = await outcomes();
      return now.handled === before.handled + 1 && now.duplicate === before.duplicate + 1;
    }, { message: 'one delivery handled and one recognised as a duplicate' });

    expect(await changesFor(event.eventId)).toMatchObject({ effects: 1, inbox: 1 });
    expect(await emittedFor(event)).toBe(1);
  });

  test('is acknowledged as a duplicate, not retried, when its handler would now fail', async () => {
    const before = await outcomes();
    const event = orderCreated();
    refusedWhenRepeated.add(event.eventId);
    await publisher.publishEvent(exchange, event);
    await waitFor(async () => (await outcomes()).handled === before.handled + 1, { message: 'the first delivery handled' });
    await publisher.publishEvent(exchange, event);
    await waitFor(async () => (await outcomes()).duplicate === before.duplicate + 1, { message: 'the second delivery recognised as a duplicate' });

    expect((await outcomes()).retried).toBe(before.retried);
    expect(await changesFor(event.eventId)).toMatchObject({ effects: 1, inbox: 1 });
  });
});
