/**
 * Contract: a service whose broker connection is cut goes not-ready, and once the link is
 * back amqplib's recovery reconnects, the consumer resumes and new messages are handled
 * again. Messages published meanwhile wait in the queue and are handled; a message that
 * was in the handler when the link went down (its ack lost) is redelivered and recognised
 * as already applied, so every event changes the database exactly once.
 */
import type { Generated } from 'kysely';
import type pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { on, type Envelope, type MessagingTables } from '../src/internal.ts';
import { deleteTopology, startTcpProxy, testNames, testServers, waitFor, type TcpProxy, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, metricValue, orderCreated, rawPublisher, startTestService, testPool, type RawPublisher, type TestService } from './support/harness.ts';

interface EffectsDb extends MessagingTables {
  effects: { id: Generated<number>; event_id: string };
}

const HANDLER = 'test.record-effect';

const cleanup = new Cleanup();
let servers: TestServers;
let proxy: TcpProxy;
let running: TestService<EffectsDb>;
let pool: pg.Pool;
let publisher: RawPublisher;
/** Deliveries of these events wait inside their transaction until released. */
const gates = new Map<string, { entered: boolean; released: Promise<void> }>();

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('consumer_link_cut');
  cleanup.defer(() => database.drop());
  pool = testPool(database.url);
  cleanup.defer(() => pool.end());
  await pool.query('create table effects (id bigint generated always as identity primary key, event_id uuid not null)');
  const target = new URL(servers.amqpUrl);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
  cleanup.defer(() => proxy.close());
  const names = testNames('consumer-cut');
  running = await startTestService<EffectsDb>({
    env: { DATABASE_URL: database.url, DATABASE_POOL_SIZE: '4', RABBITMQ_URL: proxy.url(servers.amqpUrl), ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix },
    handlers: () => [
      on<EffectsDb, 'OrderCreated'>('OrderCreated', HANDLER, async ({ event, trx }) => {
        await trx.insertInto('effects').values({ event_id: event.eventId }).execute();
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
  cleanup.defer(() => proxy.restore());
  // Test messages go straight to the broker, not through the proxy.
  publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
});

afterAll(() => cleanup.run());

const ready = async () => (await fetch(`${running.service.url}/ready`)).status === 200;
const handled = () => metricValue(running.service.url, 'messages_total', { handler: HANDLER, outcome: 'handled' });
const duplicates = () => metricValue(running.service.url, 'messages_total', { handler: HANDLER, outcome: 'duplicate' });
async function effectsOf(events: readonly Envelope[]): Promise<number[]> {
  const { rows } = await pool.query<{ event_id: string; n: number }>('select event_id, count(*)::int as n from effects where event_id = any($1::uuid[]) group by event_id', [events.map((event) => event.eventId)]);
  return events.map((event) => rows.find((row) => row.event_id === event.eventId)?.n ?? 0);
}

test('after the link is cut and restored, the consumer resumes and every event is applied exactly once', async () => {
  expect(await ready()).toBe(true);
  const before = orderCreated();
  await publisher.publishEvent(running.service.topology!.exchange, before);
  await waitFor(async () => (await effectsOf([before]))[0] === 1, { message: 'the first event handled' });

  // An event is in its handler's transaction when the link goes down.
  const inFlight = orderCreated();
  let release!: () => void;
  const gate = { entered: false, released: new Promise<void>((resolve) => (release = resolve)) };
  gates.set(inFlight.eventId, gate);
  await publisher.publishEvent(running.service.topology!.exchange, inFlight);
  await waitFor(() => gate.entered, { message: 'the in-flight event inside its handler' });

  proxy.cut();
  await waitFor(async () => !(await ready()), { message: 'the service to report not ready' });
  release(); // its transaction commits, but its ack has no channel to go out on
  const whileCut = orderCreated();
  await publisher.publishEvent(running.service.topology!.exchange, whileCut);

  proxy.restore();
  await waitFor(ready, { message: 'the service ready again after recovery' });
  await waitFor(async () => (await effectsOf([whileCut]))[0] === 1, { message: 'the event published during the cut handled' });
  await waitFor(async () => (await duplicates()) === 1, { message: 'the redelivered in-flight event recognised as applied' });

  const after = orderCreated();
  await publisher.publishEvent(running.service.topology!.exchange, after);
  await waitFor(async () => (await effectsOf([after]))[0] === 1, { message: 'a new event handled after recovery' });

  expect(await effectsOf([before, inFlight, whileCut, after])).toEqual([1, 1, 1, 1]);
  await waitFor(async () => (await handled()) === 4, { message: 'four deliveries counted as handled' });
  const { rows } = await pool.query<{ n: number }>('select count(*)::int as n from processed_events');
  expect(rows[0]!.n).toBe(4);
});
