import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { Broker } from '../broker/broker.ts';
import { ConfirmPublisher } from '../broker/confirm-publisher.ts';
import { QueueDepth } from '../broker/queue-depth.ts';
import { declareTopology, serviceTopology, type ServiceTopology } from '../broker/topology.ts';
import { brokerUrls, retryDelays, type MessagingSettings, type ServiceName } from '../config/messaging-settings.ts';
import { Consumer } from '../consumer/consumer.ts';
import type { EventHandler } from '../consumer/handler.ts';
import type { EventType } from '../contracts/events.ts';
import { createDatabase, type Database } from '../db/database.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';
import { serveApiDocs } from '../http/openapi.ts';
import { createHttpApp, type HttpApp } from '../http/server.ts';
import { Type } from 'typebox';
import { createLogger, type Logger } from '../logger.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import { Outbox } from '../outbox/outbox.ts';
import { OutboxRelay } from '../outbox/relay.ts';
import { traceHttp } from '../tracing/http.ts';
import { startTracing, type Tracing } from '../tracing/tracing.ts';
import { mechanismsOff, switchedOff } from './mechanisms.ts';
import { RetentionJanitor, type RetentionRule } from './retention.ts';

/** Background work a service runs beside its consumer (the order service's timeout checker). */
export interface Worker {
  start(): void;
  stop(): Promise<void>;
}

/** What a service's own code is given: its database, outbox, logger, metrics and settings. */
export interface ServiceContext<DB extends MessagingTables, C extends MessagingSettings> {
  config: C;
  db: Kysely<DB>;
  outbox: Outbox<DB>;
  logger: Logger;
  metrics: Metrics;
}

export interface ServiceDefinition<DB extends MessagingTables, C extends MessagingSettings> {
  name: ServiceName;
  /** What the service does, for its OpenAPI document. */
  description?: string;
  /** False for a service without a database of its own (notification). */
  database?: boolean;
  handlers(context: ServiceContext<DB, C>): readonly EventHandler<DB, EventType>[];
  routes?(app: HttpApp, context: ServiceContext<DB, C>): void;
  workers?(context: ServiceContext<DB, C>): Worker[];
  /** Tables of the service's own that the kit's retention sweep keeps short, beside the outbox and inbox. */
  retention?(context: ServiceContext<DB, C>): readonly RetentionRule[];
}

export interface RunningService<DB extends MessagingTables = MessagingTables> {
  name: ServiceName;
  app: HttpApp;
  /** The base URL the HTTP server listens on. */
  url: string;
  db: Kysely<DB>;
  relay: OutboxRelay;
  topology: ServiceTopology | undefined;
  /** The retention sweep (every minute); undefined for a service without a database. */
  retention: RetentionJanitor | undefined;
  logger: Logger;
  /** The service's tracer provider; undefined when no OTLP endpoint is set (no SDK started). */
  tracing: Tracing | undefined;
  stop(): Promise<void>;
}

/**
 * Builds and starts one service from its definition: database pool, outbox and relay,
 * topology, consumer, HTTP (with /health, /ready, /metrics) and workers. `stop()` shuts
 * down in the order that loses nothing: stop HTTP and workers, stop consuming and let
 * in-flight handlers commit and ack, flush the relay, then close the broker and the pool.
 */
export async function startService<DB extends MessagingTables, C extends MessagingSettings>(
  definition: ServiceDefinition<DB, C>,
  config: C,
  options: { logger?: Logger } = {},
): Promise<RunningService<DB>> {
  mechanismsOff(); // an unknown name in KIT_WITHOUT stops the start here, before anything connects
  const logger = options.logger ?? createLogger(definition.name, config.LOG_LEVEL);
  const metrics = createMetrics(definition.name);
  const tracing = await startTracing(config);
  const hasDatabase = definition.database !== false;
  const database: Database<DB> | undefined = hasDatabase ? createDatabase<DB>(config.DATABASE_URL, config.DATABASE_POOL_SIZE) : undefined;
  const db = database?.db as Kysely<DB>;
  const kitDb = db as unknown as Kysely<MessagingTables>;

  const publisher = new ConfirmPublisher(config.OUTBOX_CONFIRM_TIMEOUT_MS);
  const relay = new OutboxRelay({
    db: kitDb,
    publisher,
    exchange: config.ORDER_EXCHANGE,
    batchSize: config.OUTBOX_BATCH_SIZE,
    pollIntervalMs: config.OUTBOX_POLL_INTERVAL_MS,
    maxInFlightBatches: relayConnections(config.DATABASE_POOL_SIZE),
    logger: logger.child({ component: 'relay' }),
    metrics,
    tracing,
    ...(config.OUTBOX_NOTIFY ? { listenUrl: config.DATABASE_URL } : {}),
  });
  // KIT_WITHOUT=publish-from-memory: rows are left unclaimed, and a commit that added some wakes the relay to drain the table.
  const fromMemory = !switchedOff('publish-from-memory');
  const outbox = new Outbox<DB>(db, {
    notify: config.OUTBOX_NOTIFY,
    ...(fromMemory ? { claimMs: config.OUTBOX_CLAIM_MS } : {}),
    onCommit: (messages) => (fromMemory ? relay.publishCommitted(messages) : messages.length > 0 && relay.wake()),
    tracing,
  });
  const context: ServiceContext<DB, C> = { config, db, outbox, logger, metrics };

  const handlers = definition.handlers(context);
  const workers = definition.workers?.(context) ?? [];
  const topology = handlers.length
    ? serviceTopology({
        exchange: config.ORDER_EXCHANGE,
        queuePrefix: config.QUEUE_PREFIX,
        service: definition.name,
        consumes: handlers.map((handler) => handler.event),
        retryDelaysMs: retryDelays(config),
        deliveryLimit: config.QUEUE_DELIVERY_LIMIT,
        quorumInitialGroupSize: config.QUORUM_INITIAL_GROUP_SIZE,
      })
    : undefined;
  // KIT_WITHOUT=consumer-batches: exactly as CONSUMER_BATCH_SIZE=1.
  const batchSize = switchedOff('consumer-batches') ? 1 : config.CONSUMER_BATCH_SIZE;
  const consumer = topology
    ? new Consumer<DB>({
        topology,
        handlers,
        ...(hasDatabase ? { outbox } : {}),
        prefetch: config.CONSUMER_PREFETCH,
        batchSize,
        concurrency: hasDatabase
          ? handlerConcurrency(config.DATABASE_POOL_SIZE, { batches: batchSize > 1, workers: workers.length })
          : config.CONSUMER_PREFETCH,
        maxAttempts: config.MAX_DELIVERY_ATTEMPTS,
        logger: logger.child({ component: 'consumer' }),
        metrics,
        tracing,
      })
    : undefined;

  const broker = await Broker.connect(brokerUrls(config.RABBITMQ_URL), {
    logger,
    topology: (connection) => declareTopology(connection, config.ORDER_EXCHANGE, topology),
  });
  if (hasDatabase) {
    await broker.add({
      attach: async (connection, channelLost) => {
        await publisher.attach(connection, channelLost);
        relay.wake(); // rows may have piled up while the broker was away
      },
      detach: () => publisher.detach(),
    });
  }
  if (topology) {
    const deadLetters = new QueueDepth(topology.deadLetterQueue);
    await broker.add(deadLetters);
    metrics.readDeadLetterQueueWith(() => deadLetters.messages());
  }

  const janitor = hasDatabase
    ? new RetentionJanitor(kitDb, { outboxMs: config.OUTBOX_RETENTION_MS, inboxMs: config.INBOX_RETENTION_MS, rules: definition.retention?.(context) ?? [] }, logger)
    : undefined;
  if (hasDatabase) relay.start();
  janitor?.start();

  const app = createHttpApp(logger);
  if (tracing) await traceHttp(app, tracing);
  await serveApiDocs(app, { title: `checkout-saga ${definition.name} service`, version: API_VERSION, ...(definition.description ? { description: definition.description } : {}) });
  app.get('/health', { schema: { summary: 'Liveness: the process answers', noDatabase: true, response: { 200: Health } } }, async () => ({
    status: 'ok' as const,
    service: definition.name,
  }));
  app.get('/ready', { schema: { summary: 'Readiness: the database answers and the broker connection consumes', noDatabase: true, response: { 200: Readiness, 503: Readiness } } }, async (_request, reply) => {
    const checks = {
      database: hasDatabase ? await reachable(kitDb) : true,
      broker: broker.isConnected && (consumer?.isConsuming ?? true),
    };
    const ready = checks.database && checks.broker;
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });
  app.get('/metrics', { schema: { summary: 'Prometheus metrics of this process', noDatabase: true, response: { 200: MetricsText } } }, async (_request, reply) => {
    if (hasDatabase) await recordOutboxBacklog(kitDb, metrics).catch(() => {});
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  definition.routes?.(app, context);
  for (const worker of workers) worker.start();

  let address: string;
  try {
    address = await app.listen({ port: config.PORT, host: config.HOST });
  } catch (error) {
    // Leave nothing running behind a failed start (a test, or a caller that retries, lives on).
    await Promise.allSettled(workers.map((worker) => worker.stop()));
    await relay.stop().catch(() => {});
    janitor?.stop();
    await broker.close().catch(() => {});
    await database?.close().catch(() => {});
    await tracing?.shutdown().catch(() => {});
    throw error;
  }
  const url = address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1');
  // Consuming starts last: a start that fails before this point never holds a prefetch window of messages.
  if (consumer) await broker.add(consumer);
  logger.info({ url, queue: topology?.queue }, `${definition.name} service started`);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info('shutting down');
      await app.close();
      await Promise.all(workers.map((worker) => worker.stop()));
      await consumer?.stop();
      await relay.stop();
      janitor?.stop();
      await broker.close().catch(() => {});
      await database?.close();
      // Last, so the spans of the final messages and publishes are exported too.
      await tracing?.shutdown().catch((error: Error) => logger.warn({ err: error.message }, 'could not export the last spans'));
      logger.info('stopped');
    })());

  return { name: definition.name, app, url, db, relay, topology, retention: janitor, logger, tracing, stop };
}

/** The version of the HTTP API every service's OpenAPI document states. */
const API_VERSION = '1.0.0';

const Health = Type.Object({ status: Type.Literal('ok'), service: Type.String() }, { description: 'The process is up' });
const Readiness = Type.Object(
  {
    status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
    checks: Type.Object({ database: Type.Boolean(), broker: Type.Boolean() }),
  },
  { description: 'ready (200) when every check passes, not_ready (503) when one fails' },
);
const MetricsText = {
  description: 'Prometheus text exposition format',
  content: { 'text/plain': { schema: Type.String() } },
};

async function reachable(db: Kysely<MessagingTables>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}

async function recordOutboxBacklog(db: Kysely<MessagingTables>, metrics: Metrics): Promise<void> {
  const { rows } = await sql<{ pending: number; oldest: number | null }>`
    select count(*)::int as pending, extract(epoch from now() - min(created_at))::float8 as oldest
    from outbox where published_at is null`.execute(db);
  metrics.outboxPending.set(rows[0]?.pending ?? 0);
  metrics.outboxOldestAge.set(rows[0]?.oldest ?? 0);
}

/**
 * Relay batches in flight: pipelined batches (about +30 % rows/s draining a backlog here), each
 * holding a connection while it waits for confirms; at most a third of the pool, so handlers keep the rest.
 */
export function relayConnections(poolSize: number): number {
  return Math.min(3, Math.max(1, Math.floor(poolSize / 3)));
}

/**
 * Handlers that may run at once outside batches. Each holds a connection for its whole
 * transaction, however long it waits on the outside world: up to the prefetch count of them
 * would take the whole pool, and the relay, a worker (the order service's timeout checker) and
 * HTTP (/ready, POST /orders) would then time out waiting for a connection, and so would the
 * handlers at the back, retried for nothing. So they get what is left once the relay's batches,
 * the consumer's one batch transaction (when it batches), one connection per worker and one for
 * HTTP are set aside; never less than one. A pool of 10: 5 in payment, 4 in order.
 */
export function handlerConcurrency(poolSize: number, uses: { batches: boolean; workers: number }): number {
  const kept = relayConnections(poolSize) + (uses.batches ? 1 : 0) + uses.workers + 1;
  return Math.max(1, poolSize - kept);
}
