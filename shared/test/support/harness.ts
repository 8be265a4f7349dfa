/*
 * What the contract tests share: a migrated database, a service started from the kit with
 * test names, a "tap" queue that records what reached an exchange, outbox rows written by
 * plain SQL (as another process would), Prometheus readings, and LIFO cleanup.
 */
import amqp, { type ConsumeMessage } from 'amqplib';
import pg from 'pg';
import { Type } from 'typebox';
import { v7 } from 'uuid';
import {
  createLogger,
  loadConfig,
  messagingSettings,
  migrateDatabase,
  newEvent,
  OUTBOX_NOTIFY_CHANNEL,
  routingKeyOf,
  startService,
  type Envelope,
  type EventHandler,
  type EventType,
  type Logger,
  type MessagingSettings,
  type MessagingTables,
  type RunningService,
  type ServiceContext,
  type ServiceName,
} from '../../src/internal.ts';
import { createTestDatabase, deleteTopology, testNames, testServers, type TestDatabase, type TestServers } from '../../src/testing/index.ts';
import { afterAll, beforeAll } from 'vitest';

/** Logs of the code under test stay out of the test output. */
export const silentLogger: Logger = createLogger('test', 'silent');

/** A fresh database with the kit's tables (outbox, processed_events) and nothing else. */
export async function createMessagingDatabase(label: string): Promise<TestDatabase> {
  const database = await createTestDatabase(label);
  await migrateDatabase({ databaseUrl: database.url, service: 'none' });
  return database;
}

/** Messaging settings as a service would load them, from `env` over the defaults; HTTP on a free port of 127.0.0.1. */
export function testSettings(env: Record<string, string>, service: ServiceName = 'payment'): MessagingSettings {
  return loadConfig(Type.Object(messagingSettings(service, 0)), { LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0', ...env });
}

export interface TestService<DB extends MessagingTables> {
  service: RunningService<DB>;
  /** What the service's own code is given: its outbox among others. */
  context: ServiceContext<DB, MessagingSettings>;
  config: MessagingSettings;
}

/** Starts a service exactly as `runService` would (through `startService`), minus the signal handling. */
export async function startTestService<DB extends MessagingTables = MessagingTables>(options: {
  env: Record<string, string>;
  name?: ServiceName;
  handlers?: (context: ServiceContext<DB, MessagingSettings>) => EventHandler<DB, EventType>[];
  logger?: Logger;
}): Promise<TestService<DB>> {
  const config = testSettings(options.env, options.name);
  let context: ServiceContext<DB, MessagingSettings> | undefined;
  const service = await startService<DB, MessagingSettings>(
    {
      name: options.name ?? 'payment',
      handlers: (ctx) => options.handlers?.(ctx) ?? [],
      workers: (ctx) => {
        context = ctx;
        return [];
      },
    },
    config,
    { logger: options.logger ?? silentLogger },
  );
  if (!context) throw new Error('startService did not hand out its context');
  return { service, context, config };
}

/** A new OrderCreated envelope of a new saga. */
export function orderCreated(amountMinor = 1250): Envelope<'OrderCreated'> {
  return newEvent('OrderCreated', { sagaId: v7(), orderId: v7() }, {
    customerId: null,
    customerEmail: 'buyer@example.com',
    items: [{ sku: 'SKU-1', qty: 1 }],
    amountMinor,
    currency: 'EUR',
  });
}

export function orderCreatedEvents(count: number): Envelope<'OrderCreated'>[] {
  return Array.from({ length: count }, () => orderCreated());
}

/**
 * Writes outbox rows with plain SQL in one transaction, as a process without the kit
 * (or another instance) would: nothing in this process is woken. With `notify`, the
 * transaction also sends the relay's NOTIFY.
 */
export async function insertOutboxRows(target: pg.Pool | pg.Client, events: readonly Envelope[], options: { notify?: boolean } = {}): Promise<void> {
  const client = target instanceof pg.Pool ? await target.connect() : target;
  try {
    await client.query('begin');
    await client.query('insert into outbox (event_id, routing_key, envelope) select * from unnest($1::uuid[], $2::text[], $3::jsonb[])', [
      events.map((event) => event.eventId),
      events.map((event) => routingKeyOf(event.type)),
      events.map((event) => JSON.stringify(event)),
    ]);
    if (options.notify) await client.query('select pg_notify($1, $2)', [OUTBOX_NOTIFY_CHANNEL, '']);
    await client.query('commit');
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    if (client !== target) (client as pg.PoolClient).release();
  }
}

export interface OutboxCounts {
  total: number;
  published: number;
  unpublished: number;
  failed: number;
}

export async function outboxCounts(client: pg.Pool | pg.Client): Promise<OutboxCounts> {
  const { rows } = await client.query<OutboxCounts>(`
    select count(*)::int as total, count(published_at)::int as published,
           (count(*) - count(published_at))::int as unpublished, count(last_error)::int as failed
    from outbox`);
  return rows[0]!;
}

/** A pool on a test database for the test's own queries. */
export function testPool(url: string, max = 4): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', () => {});
  return pool;
}

export interface Tap {
  queue: string;
  /** Deliveries per messageId (= eventId). */
  counts: Map<string, number>;
  messages: ConsumeMessage[];
  /** Number of distinct messageIds seen. */
  readonly distinct: number;
  bind(pattern: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * An exclusive, auto-deleted queue bound to `exchange` that records every message
 * routed there. It lives on its own connection straight to the broker, so it sees the
 * wire truth whatever happens to the connections of the code under test, and it
 * disappears with its connection.
 */
export async function tapExchange(amqpUrl: string, exchange: string, patterns: readonly string[] = ['#']): Promise<Tap> {
  const connection = await amqp.connect(amqpUrl);
  connection.on('error', () => {});
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, 'topic', { durable: true });
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
  for (const pattern of patterns) await channel.bindQueue(queue, exchange, pattern);
  const counts = new Map<string, number>();
  const messages: ConsumeMessage[] = [];
  await channel.consume(
    queue,
    (message) => {
      if (!message) return;
      messages.push(message);
      const id = String(message.properties.messageId);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    },
    { noAck: true },
  );
  return {
    queue,
    counts,
    messages,
    get distinct() {
      return counts.size;
    },
    bind: async (pattern) => {
      await channel.bindQueue(queue, exchange, pattern);
    },
    close: () => connection.close().catch(() => {}),
  };
}

/** Publishes raw bodies straight to an exchange (as a misbehaving or duplicating producer would), waiting for confirms. */
export async function rawPublisher(amqpUrl: string) {
  const connection = await amqp.connect(amqpUrl);
  connection.on('error', () => {});
  const channel = await connection.createConfirmChannel();
  return {
    channel,
    publish(exchange: string, routingKey: string, body: string | Buffer, options: amqp.Options.Publish = {}): Promise<void> {
      return new Promise((resolve, reject) =>
        channel.publish(exchange, routingKey, typeof body === 'string' ? Buffer.from(body) : body, { persistent: true, contentType: 'application/json', ...options }, (error) =>
          error ? reject(error) : resolve(),
        ),
      );
    },
    publishEvent(exchange: string, event: Envelope): Promise<void> {
      return this.publish(exchange, routingKeyOf(event.type), JSON.stringify(event), { messageId: event.eventId, type: event.type, correlationId: event.sagaId });
    },
    close: () => connection.close().catch(() => {}),
  };
}
export type RawPublisher = Awaited<ReturnType<typeof rawPublisher>>;

/** Reads one sample from a service's GET /metrics; 0 when the series does not exist yet. */
export async function metricValue(serviceUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${serviceUrl}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((pair) => [pair[1], pair[2]]));
    if (Object.entries(labels).every(([key, value]) => present[key] === value)) return Number(match[3]);
  }
  return 0;
}

/** Cleanup steps run last-in first-out; every step runs even if an earlier one failed, and failures are reported together. */
/** A plain channel for a test to look into queues with (checkQueue, get, deleteQueue); closed by `cleanup`. */
export async function inspectorChannel(amqpUrl: string, cleanup: Cleanup): Promise<amqp.Channel> {
  const connection = await amqp.connect(amqpUrl);
  cleanup.defer(() => connection.close());
  return connection.createChannel();
}

export class Cleanup {
  private readonly steps: (() => Promise<unknown> | unknown)[] = [];

  defer(step: () => Promise<unknown> | unknown): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    const failures: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, 'cleanup failed');
  }
}

/** The servers, one messaging database and a pool on it: what a file of publishing tests shares. */
export interface MessagingFixture {
  readonly servers: TestServers;
  readonly database: TestDatabase;
  readonly pool: pg.Pool;
}

/** A MessagingFixture set up before the file's tests and removed after them; read its fields inside tests. */
export function messagingFixture(label: string): MessagingFixture {
  const cleanup = new Cleanup();
  const fixture = {} as { servers: TestServers; database: TestDatabase; pool: pg.Pool };
  beforeAll(async () => {
    fixture.servers = await testServers();
    fixture.database = await createMessagingDatabase(label);
    cleanup.defer(() => fixture.database.drop());
    fixture.pool = testPool(fixture.database.url);
    cleanup.defer(() => fixture.pool.end());
  });
  afterAll(() => cleanup.run());
  return fixture;
}

/**
 * A service that only publishes, on its own exchange with a tap (bound to `patterns`), on a
 * shared database; when the test ends it is stopped, its broker objects deleted and the
 * outbox emptied for the next test.
 */
export async function publishingService(
  shared: MessagingFixture,
  options: { label: string; env: Record<string, string>; patterns?: readonly string[] },
  onTestFinished: (step: () => Promise<void>) => void,
) {
  const { servers, database, pool } = shared;
  const names = testNames(options.label);
  const tap = await tapExchange(servers.amqpUrl, names.exchange, options.patterns);
  const running = await startTestService({
    env: { DATABASE_URL: database.url, DATABASE_POOL_SIZE: '3', RABBITMQ_URL: servers.amqpUrl, ORDER_EXCHANGE: names.exchange, QUEUE_PREFIX: names.queuePrefix, ...options.env },
  });
  onTestFinished(async () => {
    await running.service.stop();
    await tap.close();
    await deleteTopology(servers.amqpUrl, names);
    await pool.query('truncate outbox');
  });
  return { ...running, tap };
}
