import {
  loadConfig,
  migrateDatabase,
  routingKeyOf,
  startService,
  type Envelope,
  type EventType,
  type RunningService,
} from '@checkout-saga/shared/internal';
import { createTestDatabase, deleteBrokerObjects, publishEnvelopes, startTcpProxy, testNames, testServers, waitFor, type TcpProxy, type TestDatabase } from '@checkout-saga/shared/testing';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { sql, type Kysely } from 'kysely';
import { Type } from 'typebox';
import { orderService, orderSettings, type OrderConfig, type OrderTables } from '../src/index.ts';

export type Env = Partial<Record<keyof OrderConfig, string>>;

/**
 * The order service started in-process on its own database, exchange and queues, with a tap
 * queue bound to everything the service publishes (so the relay's mandatory publishes are
 * routable, and tests can see what went out) and a confirm channel to publish events to it.
 */
export interface OrderHarness {
  service: RunningService<OrderTables>;
  url: string;
  db: Kysely<OrderTables>;
  database: TestDatabase;
  /** Envelopes the service published, in arrival order. */
  published: Envelope[];
  publish(event: Envelope): Promise<void>;
  /** With `databaseProxy`: the proxy between the service and its database, to cut or slow the link. */
  proxy: TcpProxy | undefined;
  /** Counter value from GET /metrics for a line matching every label given. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

const PUBLISHED_KEYS: EventType[] = ['OrderCreated', 'OrderConfirmed', 'OrderCancelled', 'PaymentRefundRequested'];

export async function startOrderHarness(label: string, env: Env = {}, options: { databaseProxy?: boolean } = {}): Promise<OrderHarness> {
  const servers = await testServers();
  const database = await createTestDatabase(`order_${label}`);
  const names = testNames(`order-${label}`);
  const tapQueue = `${names.queuePrefix}tap`;
  let service: RunningService<OrderTables> | undefined;
  let connection: ChannelModel | undefined;
  let proxy: TcpProxy | undefined;

  const cleanup = async () => {
    proxy?.restore();
    proxy?.setLatency(0);
    await service?.stop();
    await proxy?.close();
    await connection?.close().catch(() => {});
    const topology = service?.topology;
    await deleteBrokerObjects(servers.amqpUrl, {
      exchanges: [names.exchange],
      queues: [tapQueue, ...(topology ? [topology.queue, topology.deadLetterQueue, ...topology.retryQueues.map((queue) => queue.name)] : [])],
    });
    await database.drop();
  };

  try {
    await migrateDatabase({ databaseUrl: database.url, service: 'order' });
    if (options.databaseProxy) {
      const target = new URL(database.url);
      proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    }
    const config = loadConfig(Type.Object(orderSettings), {
      DATABASE_URL: proxy ? proxy.url(database.url) : database.url,
      DATABASE_POOL_SIZE: '8',
      RABBITMQ_URL: servers.amqpUrl,
      ORDER_EXCHANGE: names.exchange,
      QUEUE_PREFIX: names.queuePrefix,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      RETRY_BASE_DELAY_MS: '100',
      INBOX_RETENTION_MS: '600000',
      ...env,
    });

    connection = await connect(servers.amqpUrl);
    connection.on('error', () => {});
    const channel: ConfirmChannel = await connection.createConfirmChannel();
    await channel.assertExchange(names.exchange, 'topic', { durable: true });
    await channel.assertQueue(tapQueue, { durable: false, exclusive: true });
    for (const type of PUBLISHED_KEYS) await channel.bindQueue(tapQueue, names.exchange, routingKeyOf(type));
    const published: Envelope[] = [];
    await channel.consume(tapQueue, (message) => {
      if (!message) return;
      published.push(JSON.parse(message.content.toString('utf8')) as Envelope);
      channel.ack(message);
    });

    service = await startService(orderService, config);
    const running = service;
    await waitFor(async () => (await fetch(`${running.url}/ready`)).ok, { message: 'order service ready' });

    return {
      service: running,
      url: running.url,
      db: running.db,
      database,
      proxy,
      published,
      publish: (event) => publishEnvelopes(channel, names.exchange, [event]),
      metric: async (name, labels = {}) => {
        const text = await (await fetch(`${running.url}/metrics`)).text();
        const line = text
          .split('\n')
          .find((candidate) => candidate.startsWith(`${name}{`) && Object.entries(labels).every(([key, value]) => candidate.includes(`${key}="${value}"`)));
        return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
      },
      stop: cleanup,
    };
  } catch (error) {
    await cleanup().catch(() => {});
    throw error;
  }
}

/** A valid POST /orders body. */
export function orderBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    customerId: 'customer-1',
    customerEmail: 'ada@example.com',
    items: [
      { sku: 'SKU-1', qty: 2 },
      { sku: 'SKU-2', qty: 1 },
    ],
    amount: '125.50',
    currency: 'EUR',
    ...overrides,
  };
}

export async function postOrder(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

export async function getJson(url: string) {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** Row counts of every table a request may write. */
export async function rowCounts(db: Kysely<OrderTables>): Promise<Record<string, number>> {
  const { rows } = await sql<Record<string, number>>`
    select (select count(*) from orders)::int as orders,
           (select count(*) from sagas)::int as sagas,
           (select count(*) from saga_history)::int as history,
           (select count(*) from outbox)::int as outbox,
           (select count(*) from idempotency_keys)::int as idempotency_keys`.execute(db);
  return rows[0]!;
}

export async function outboxOf(db: Kysely<OrderTables>, sagaId: string): Promise<Envelope[]> {
  const rows = await db
    .selectFrom('outbox')
    .select(['envelope'])
    .where(sql<string>`envelope->>'sagaId'`, '=', sagaId)
    .orderBy('id')
    .execute();
  return rows.map((row) => row.envelope as Envelope);
}
