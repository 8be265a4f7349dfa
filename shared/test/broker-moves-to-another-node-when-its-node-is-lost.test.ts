/**
 * Contract: RABBITMQ_URL may name several nodes of one cluster, separated by commas. A service
 * connects to the first that answers; when that node is lost and stays away, it moves to
 * another at once and consumes and publishes there, without waiting for the lost node. Here
 * the two "nodes" are two TCP proxies in front of the same broker: cutting one is, to the
 * service, exactly a node that died (its connections drop and new ones are refused).
 */
import net from 'node:net';
import type { Generated } from 'kysely';
import type pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Broker, declareTopology, on, type Envelope, type MessagingTables } from '../src/internal.ts';
import { deleteTopology, startTcpProxy, testNames, testServers, waitFor, type TcpProxy, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, insertOutboxRows, orderCreated, orderCreatedEvents, rawPublisher, silentLogger, startTestService, tapExchange, testPool, type RawPublisher, type Tap, type TestService } from './support/harness.ts';

interface EffectsDb extends MessagingTables {
  effects: { id: Generated<number>; event_id: string };
}

const cleanup = new Cleanup();
let servers: TestServers;
let nodeA: TcpProxy;
let nodeB: TcpProxy;
let running: TestService<EffectsDb>;
let pool: pg.Pool;
let publisher: RawPublisher;
let tap: Tap;

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('broker_failover');
  cleanup.defer(() => database.drop());
  pool = testPool(database.url);
  cleanup.defer(() => pool.end());
  await pool.query('create table effects (id bigint generated always as identity primary key, event_id uuid not null)');
  const target = new URL(servers.amqpUrl);
  nodeA = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
  cleanup.defer(() => nodeA.close());
  nodeB = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
  cleanup.defer(() => nodeB.close());
  const names = testNames('broker-failover');
  // Events the service publishes are seen here (routing keys the service does not consume itself).
  tap = await tapExchange(servers.amqpUrl, names.exchange);
  cleanup.defer(() => tap.close());
  running = await startTestService<EffectsDb>({
    env: {
      DATABASE_URL: database.url,
      DATABASE_POOL_SIZE: '4',
      RABBITMQ_URL: `${nodeA.url(servers.amqpUrl)}, ${nodeB.url(servers.amqpUrl)}`,
      ORDER_EXCHANGE: names.exchange,
      QUEUE_PREFIX: names.queuePrefix,
      OUTBOX_POLL_INTERVAL_MS: '100',
    },
    handlers: () => [
      on<EffectsDb, 'OrderCreated'>('OrderCreated', 'test.record-effect', async ({ event, trx }) => {
        await trx.insertInto('effects').values({ event_id: event.eventId }).execute();
      }),
    ],
  });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, running.service.topology!));
  cleanup.defer(() => running.service.stop());
  publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
});

afterAll(() => cleanup.run());

const ready = async () => (await fetch(`${running.service.url}/ready`)).status === 200;
async function applied(event: Envelope): Promise<boolean> {
  const { rows } = await pool.query<{ n: number }>('select count(*)::int as n from effects where event_id = $1', [event.eventId]);
  return rows[0]!.n === 1;
}

test('the service connects to the first address, and when that node is lost moves to the next and consumes and publishes there', async () => {
  expect(await ready()).toBe(true);
  expect(nodeA.connectionCount()).toBeGreaterThan(0);
  expect(nodeB.connectionCount()).toBe(0);
  const before = orderCreated();
  await publisher.publishEvent(running.service.topology!.exchange, before);
  await waitFor(() => applied(before), { message: 'an event handled through the first node' });

  nodeA.cut(); // and it stays down for the rest of the test
  await waitFor(async () => nodeB.connectionCount() > 0 && (await ready()), { message: 'the service ready again, connected through the second node' });

  const after = orderCreated();
  await publisher.publishEvent(running.service.topology!.exchange, after);
  await waitFor(() => applied(after), { message: 'an event handled through the second node while the first is down' });

  const outgoing = orderCreatedEvents(3);
  await insertOutboxRows(pool, outgoing);
  await waitFor(() => outgoing.every((event) => tap.counts.has(event.eventId)), { message: 'outbox rows published through the second node while the first is down' });
  expect(nodeA.connectionCount()).toBe(0);
});

test('a node that takes the connection but never answers is given up after a connect timeout, and the next one used', async () => {
  // A host that is gone without a word (a hung VM, a dropped route) looks like this: the TCP
  // connection is taken or hangs, and nothing ever comes back. Without a deadline the attempt
  // would wait for ever (or for the operating system's minutes) and no other node would be tried.
  const silent = net.createServer(() => {});
  const held = new Set<net.Socket>();
  silent.on('connection', (socket) => held.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  const silentUrl = new URL(servers.amqpUrl);
  silentUrl.host = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
  nodeB.restore();
  const exchange = testNames('broker-silent-node').exchange;
  const broker = await Broker.connect([silentUrl.href, nodeB.url(servers.amqpUrl)], { logger: silentLogger, topology: (connection) => declareTopology(connection, exchange) });
  try {
    expect(held.size, 'the silent node was tried first').toBeGreaterThan(0);
    expect(broker.isConnected).toBe(true);
  } finally {
    await broker.close();
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
    await deleteTopology(servers.amqpUrl, { exchange });
  }
}, 90_000);
