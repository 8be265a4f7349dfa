/**
 * `npm run bench:relay`: what the outbox relay and one consumer do on this machine.
 *
 * A producing service (its own database; writers and the kit's relay, built with
 * `startService` in this process) and a consuming service (its own database, a handler
 * that does nothing but the kit's inbox transaction; a separate process, as deployed:
 * bench/relay-consumer.ts). Both on fresh databases and broker names, removed at the end.
 *
 * It measures
 *   1. PostgreSQL commits/s of one-row outbox transactions, with and without `pg_notify`
 *      in each (what OUTBOX_NOTIFY=true costs every writer);
 *   2. relay drain: a backlog published and confirmed, rows/s (the relay's capacity);
 *   3. per wake mode: published from memory after the commit (the default), NOTIFY (rows committed by another
 *      connection with pg_notify, the relay listening) and polling alone every 1000 ms:
 *      - commit → handled latency p50/p99 at low load (LOW_RATE events/s);
 *      - at saturation (WRITERS connections committing one-event transactions as fast as
 *        they can): commits/s, rows published/s (first commit → last row confirmed),
 *        handled/s and commit → handled p50/p99;
 *   4. commit → confirmed at saturation with writers that commit BATCHED events per
 *      transaction (published from memory), into a queue nobody consumes: published rows/s when
 *      commits are not the bottleneck.
 * "handled" is the moment the consumer's transaction (inbox row + handler) has committed.
 *
 * Prints a text report and one JSON line (only the JSON line with --json). Stops by itself;
 * a watchdog ends it after 115 s, removing what it created.
 *
 *   npm run bench:relay [-- --low-rate 20 --low-seconds 3 --saturation-seconds 3 --writers 8 --batched 10 --backlog 30000 --json]
 *   BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), RABBITMQ_URL (default amqp://guest:guest@127.0.0.1:5672)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import pg from 'pg';
import { Type } from 'typebox';
import { v7 } from 'uuid';
import {
  createLogger,
  declareTopology,
  loadConfig,
  messagingSettings,
  migrateDatabase,
  newEvent,
  OUTBOX_NOTIFY_CHANNEL,
  retryDelays,
  routingKeyOf,
  serviceTopology,
  startService,
  type Envelope,
  type EventType,
  type MessagingSettings,
  type MessagingTables,
  type RunningService,
  type ServiceContext,
  type ServiceName,
} from '@checkout-saga/shared/internal';
import { deleteBrokerObjects, deleteTopology } from '@checkout-saga/shared/testing';
import type { ConsumerReport } from './relay-consumer.ts';

const { values: args } = parseArgs({
  options: {
    'low-rate': { type: 'string', default: '20' },
    'low-seconds': { type: 'string', default: '3' },
    'saturation-seconds': { type: 'string', default: '3' },
    writers: { type: 'string', default: '8' },
    batched: { type: 'string', default: '10' },
    backlog: { type: 'string', default: '30000' },
    'commit-seconds': { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const LOW_RATE = Number(args['low-rate']);
const LOW_SECONDS = Number(args['low-seconds']);
const SATURATION_SECONDS = Number(args['saturation-seconds']);
const WRITERS = Number(args.writers);
const BATCHED = Number(args.batched);
const BACKLOG = Number(args.backlog);
const COMMIT_SECONDS = Number(args['commit-seconds']);
const WATCHDOG_MS = 115_000;
/** How long the pipeline may take to empty after a phase before the bench gives up. */
const SETTLE_TIMEOUT_MS = 30_000;

const serverUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const amqpUrl = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const id = `bench_relay_${randomBytes(3).toString('hex')}`;
const exchange = `${id}.order.topic`;
const queuePrefix = `${id}.`;
/** Bound to the routing key of the batched phase's events; nobody consumes it. */
const sinkQueue = `${id}.sink`;
const SINK_EVENT: EventType = 'PaymentFailed';
const logger = createLogger('bench', 'warn');
const say = (line = '') => {
  if (!args.json) console.log(line);
};

// ---------------------------------------------------------------------------------------------
// What it creates, and its removal whatever happens

const cleanups: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const step of cleanups.splice(0).reverse()) await step().catch((error: Error) => console.error(`cleanup: ${error.message}`));
  })();
  return cleaning;
}
const watchdog = setTimeout(() => {
  console.error(`bench:relay did not finish within ${WATCHDOG_MS / 1000} s; removing what it created`);
  void cleanup().finally(() => process.exit(1));
}, WATCHDOG_MS);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanup().finally(() => process.exit(130)));

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

async function createServiceDatabase(name: string): Promise<string> {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  cleanups.push(() => admin(`drop database if exists "${name}" with (force)`));
  await migrateDatabase({ databaseUrl: url.toString(), service: 'none' });
  return url.toString();
}

function pool(url: string, max: number): pg.Pool {
  const created = new pg.Pool({ connectionString: url, max });
  created.on('error', () => {});
  cleanups.push(() => created.end());
  return created;
}

function settings(service: ServiceName, env: Record<string, string>): MessagingSettings {
  return loadConfig(Type.Object(messagingSettings(service, 0)), { RABBITMQ_URL: amqpUrl, ORDER_EXCHANGE: exchange, QUEUE_PREFIX: queuePrefix, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', ...env });
}

// ---------------------------------------------------------------------------------------------
// Clock and statistics

/** Milliseconds on a clock this process and the consumer process share. */
const clock = () => performance.timeOrigin + performance.now();
const committedAt = new Map<string, number>();
const handledAt = new Map<string, number>();
const round = (value: number, digits = 2) => Number(value.toFixed(digits));

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function latencies(eventIds: readonly string[]) {
  const values = eventIds.map((eventId) => handledAt.get(eventId)! - committedAt.get(eventId)!).sort((a, b) => a - b);
  return { events: values.length, p50: round(percentile(values, 50)), p99: round(percentile(values, 99)), max: round(values.at(-1) ?? Number.NaN) };
}

async function until(condition: () => Promise<boolean> | boolean, what: string, intervalMs = 2): Promise<number> {
  const deadline = clock() + SETTLE_TIMEOUT_MS;
  for (;;) {
    if (await condition()) return clock();
    if (clock() > deadline) throw new Error(`timed out after ${SETTLE_TIMEOUT_MS} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

const allPublished = async (producer: pg.Pool) => (await producer.query('select 1 from outbox where published_at is null limit 1')).rowCount === 0;

function event(type: EventType = 'OrderCreated'): Envelope {
  const saga = { sagaId: v7(), orderId: v7() };
  return type === 'OrderCreated'
    ? newEvent('OrderCreated', saga, { customerId: null, customerEmail: 'bench@example.com', items: [{ sku: 'BENCH-1', qty: 1 }], amountMinor: 1999, currency: 'EUR' })
    : newEvent('PaymentFailed', saga, { reason: 'declined', amountMinor: 1999, currency: 'EUR' });
}

// ---------------------------------------------------------------------------------------------
// The consumer process and the producer service

async function startConsumer(url: string): Promise<ChildProcess> {
  const child = fork(fileURLToPath(new URL('./relay-consumer.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, DATABASE_URL: url, RABBITMQ_URL: amqpUrl, ORDER_EXCHANGE: exchange, QUEUE_PREFIX: queuePrefix, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    child.on('message', (report: ConsumerReport) => {
      if (report.type === 'ready') resolve();
      else for (const [eventId, at] of report.events) if (!handledAt.has(eventId)) handledAt.set(eventId, at);
    });
    child.once('exit', (code) => reject(new Error(`the consumer process exited with ${code}`)));
  });
  return child;
}

async function startProducer(url: string, env: Record<string, string>): Promise<{ service: RunningService; context: ServiceContext<MessagingTables, MessagingSettings> }> {
  let context: ServiceContext<MessagingTables, MessagingSettings> | undefined;
  const service = await startService<MessagingTables, MessagingSettings>(
    {
      name: 'order',
      handlers: (ctx) => {
        context = ctx;
        return [];
      },
    },
    settings('order', { DATABASE_URL: url, ...env }),
    { logger },
  );
  return { service, context: context! };
}

// ---------------------------------------------------------------------------------------------
// Writers: how rows get into the outbox in each mode. Each commits one transaction.

type Write = () => Promise<number>;

/** Through the service's own outbox: the relay publishes the committed rows from memory. */
function writeThroughOutbox(context: ServiceContext<MessagingTables, MessagingSettings>, perTransaction = 1, type: EventType = 'OrderCreated'): Write {
  return async () => {
    const events = Array.from({ length: perTransaction }, () => event(type));
    await context.outbox.transaction((trx) => context.outbox.enqueue(trx, events));
    const at = clock();
    for (const { eventId } of events) committedAt.set(eventId, at);
    return events.length;
  };
}

/** By another connection with plain SQL, optionally sending the relay's NOTIFY in the same transaction. */
function writeWithSql(writers: pg.Pool, notify: boolean): Write {
  return async () => {
    const { eventId, type, ...rest } = event();
    const client = await writers.connect();
    try {
      await client.query('begin');
      await client.query('insert into outbox (event_id, routing_key, envelope) values ($1, $2, $3)', [eventId, routingKeyOf(type), JSON.stringify({ eventId, type, ...rest })]);
      if (notify) await client.query('select pg_notify($1, $2)', [OUTBOX_NOTIFY_CHANNEL, '']);
      await client.query('commit');
    } finally {
      client.release();
    }
    committedAt.set(eventId, clock());
    return 1;
  };
}

const newSince = (before: ReadonlySet<string>) => [...committedAt.keys()].filter((eventId) => !before.has(eventId));

async function lowLoad(write: Write): Promise<ReturnType<typeof latencies>> {
  const before = new Set(committedAt.keys());
  const started = clock();
  const writes: Promise<number>[] = [];
  for (let index = 0; index < LOW_RATE * LOW_SECONDS; index++) {
    // Pacing the load generator, one write every 1/LOW_RATE s.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + (index * 1000) / LOW_RATE - clock())));
    writes.push(write());
  }
  await Promise.all(writes);
  const ids = newSince(before);
  await until(() => ids.every((eventId) => handledAt.has(eventId)), 'the low-load events to be handled');
  return latencies(ids);
}

/** WRITERS loops committing as fast as they can for SATURATION_SECONDS; then waits for every row confirmed (and handled). */
async function saturate(write: Write, producer: pg.Pool, handled: boolean) {
  const before = new Set(committedAt.keys());
  const cpu = process.cpuUsage();
  const started = clock();
  const stopAt = started + SATURATION_SECONDS * 1000;
  let commits = 0;
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (clock() < stopAt) {
        await write();
        commits++;
      }
    }),
  );
  const writersDone = clock();
  const ids = newSince(before);
  const firstCommit = Math.min(...ids.map((eventId) => committedAt.get(eventId)!));
  const lastConfirmed = await until(() => allPublished(producer), 'every row published');
  const used = process.cpuUsage(cpu);
  const result = {
    events: ids.length,
    commitsPerSecond: Math.round(commits / ((writersDone - started) / 1000)),
    committedEventsPerSecond: Math.round(ids.length / ((writersDone - started) / 1000)),
    publishedPerSecond: Math.round(ids.length / ((lastConfirmed - firstCommit) / 1000)),
    producerCpuMsPerEvent: round((used.user + used.system) / 1000 / ids.length, 3),
  };
  if (!handled) return { ...result, handledPerSecond: undefined, latency: undefined };
  const lastHandled = await until(() => ids.every((eventId) => handledAt.has(eventId)), 'every event handled');
  return { ...result, handledPerSecond: Math.round(ids.length / ((lastHandled - firstCommit) / 1000)), latency: latencies(ids) };
}

// ---------------------------------------------------------------------------------------------
// Phases

/** One-row outbox transactions from `connections` connections for COMMIT_SECONDS: commits per second. */
async function commitRate(url: string, connections: number, notify: boolean): Promise<number> {
  const writers = new pg.Pool({ connectionString: url, max: connections });
  try {
    const write = writeWithSql(writers, notify);
    let commits = 0;
    const started = clock();
    const stopAt = started + COMMIT_SECONDS * 1000;
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (clock() < stopAt) {
          const committed = await write(); // not `commits += await write()`: that would add to a stale total
          commits += committed;
        }
      }),
    );
    return Math.round(commits / ((clock() - started) / 1000));
  } finally {
    await writers.end();
  }
}

/**
 * The relay of a started service draining a backlog: rows committed in one transaction by
 * another connection, the relay woken once; rows published and confirmed per second.
 */
async function drainRate(producerUrl: string, producer: pg.Pool) {
  const running = await startProducer(producerUrl, { OUTBOX_POLL_INTERVAL_MS: '600000' });
  try {
    const events = Array.from({ length: BACKLOG }, () => event(SINK_EVENT));
    await producer.query('insert into outbox (event_id, routing_key, envelope) select * from unnest($1::uuid[], $2::text[], $3::jsonb[])', [
      events.map((envelope) => envelope.eventId),
      events.map((envelope) => routingKeyOf(envelope.type)),
      events.map((envelope) => JSON.stringify(envelope)),
    ]);
    const cpu = process.cpuUsage();
    const committed = clock();
    running.service.relay.wake();
    const seconds = ((await until(() => allPublished(producer), 'the backlog to be published')) - committed) / 1000;
    const used = process.cpuUsage(cpu);
    return { rows: BACKLOG, batchSize: running.context.config.OUTBOX_BATCH_SIZE, seconds: round(seconds), perSecond: Math.round(BACKLOG / seconds), relayCpuMsPerRow: round((used.user + used.system) / 1000 / BACKLOG, 3) };
  } finally {
    await running.service.stop();
  }
}

type Saturation = Awaited<ReturnType<typeof saturate>>;
interface ModeResult {
  mode: string;
  low: ReturnType<typeof latencies>;
  saturation: Saturation;
}

async function measureMode(mode: string, env: Record<string, string>, writer: (context: ServiceContext<MessagingTables, MessagingSettings>) => Write, producerUrl: string, producer: pg.Pool): Promise<ModeResult> {
  const running = await startProducer(producerUrl, env);
  try {
    const write = writer(running.context);
    const low = await lowLoad(write);
    const saturation = await saturate(write, producer, true);
    return { mode, low, saturation };
  } finally {
    await running.service.stop();
    await producer.query('truncate outbox');
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const [producerUrl, consumerUrl] = await Promise.all([createServiceDatabase(`${id}_producer`), createServiceDatabase(`${id}_consumer`)]);
  const producer = pool(producerUrl, 2);

  // The consumer's queues exist before anything is published, and a sink queue takes the events nobody consumes.
  const topology = serviceTopology({ exchange, queuePrefix, service: 'payment', consumes: ['OrderCreated'], retryDelaysMs: retryDelays(settings('payment', {})) });
  cleanups.push(() => deleteTopology(amqpUrl, topology));
  cleanups.push(() => deleteBrokerObjects(amqpUrl, { queues: [sinkQueue] }));
  const connection = await amqp.connect(amqpUrl);
  cleanups.push(() => connection.close());
  await declareTopology(connection, exchange, topology);
  const channel = await connection.createChannel();
  await channel.assertQueue(sinkQueue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.bindQueue(sinkQueue, exchange, routingKeyOf(SINK_EVENT));

  const { rows } = await producer.query<{ version: string }>("select current_setting('server_version') as version");
  const environment = {
    postgres: rows[0]!.version,
    rabbitmq: String(connection.connection.serverProperties.version),
    node: process.version,
    cpus: os.availableParallelism(),
    loadAverage: round(os.loadavg()[0]!),
    loadAverageAtEnd: Number.NaN,
  };
  say(`bench:relay on ${environment.cpus} CPUs (load average ${environment.loadAverage} at start), PostgreSQL ${environment.postgres}, RabbitMQ ${environment.rabbitmq}, Node ${environment.node}`);
  say(`databases ${id}_producer and ${id}_consumer, exchange ${exchange}; queues are quorum queues`);
  if (environment.loadAverage > environment.cpus) say(`warning: the machine is busy with other work (load average ${environment.loadAverage} on ${environment.cpus} CPUs): figures will be low`);
  say();

  // 1. What pg_notify costs a committing writer (no relay running).
  const commits = {
    oneConnection: { withoutNotify: await commitRate(producerUrl, 1, false), withNotify: await commitRate(producerUrl, 1, true) },
    [`${WRITERS}Connections`]: { withoutNotify: await commitRate(producerUrl, WRITERS, false), withNotify: await commitRate(producerUrl, WRITERS, true) },
  };
  await producer.query('truncate outbox');
  say(`PostgreSQL commits/s of one-row outbox transactions (${COMMIT_SECONDS} s each)        without pg_notify   with pg_notify`);
  for (const [label, rates] of Object.entries(commits)) {
    const change = Math.round((rates.withNotify / rates.withoutNotify - 1) * 100);
    say(`  ${label.replace('Connections', ' connections').replace('oneConnection', '1 connection').padEnd(70)}${String(rates.withoutNotify).padStart(10)}${String(rates.withNotify).padStart(17)}  (${change >= 0 ? '+' : ''}${change}%)`);
  }
  say();

  // 2. The relay's capacity.
  const drain = await drainRate(producerUrl, producer);
  await channel.purgeQueue(sinkQueue);
  await producer.query('truncate outbox');
  say(`relay drain: ${drain.rows} rows published and confirmed in ${drain.seconds} s = ${drain.perSecond} rows/s (batch ${drain.batchSize}; relay process CPU ${drain.relayCpuMsPerRow} ms/row)`);
  say();

  // 3. Wake modes, with the consumer running in its own process.
  await startConsumer(consumerUrl);
  const sqlWriters = pool(producerUrl, WRITERS);
  const modes: ModeResult[] = [];
  modes.push(await measureMode('from memory', {}, (context) => writeThroughOutbox(context), producerUrl, producer));
  modes.push(await measureMode('NOTIFY', { OUTBOX_NOTIFY: 'true' }, () => writeWithSql(sqlWriters, true), producerUrl, producer));
  modes.push(await measureMode('poll 1000 ms', { OUTBOX_NOTIFY: 'false', OUTBOX_POLL_INTERVAL_MS: '1000' }, () => writeWithSql(sqlWriters, false), producerUrl, producer));

  // 4. Commit → confirmed when the writers are not the bottleneck: BATCHED events per transaction, into the sink queue.
  const batchedProducer = await startProducer(producerUrl, {});
  let batched: Saturation;
  try {
    batched = await saturate(writeThroughOutbox(batchedProducer.context, BATCHED, SINK_EVENT), producer, false);
  } finally {
    await batchedProducer.service.stop();
    await channel.purgeQueue(sinkQueue);
  }

  const pad = (value: string | number | undefined, width: number) => String(value ?? '-').padStart(width);
  say(`commit → handled: low load = ${LOW_RATE} events/s for ${LOW_SECONDS} s; saturation = ${WRITERS} writers committing one-event transactions for ${SATURATION_SECONDS} s`);
  say(`${'mode'.padEnd(16)}│${pad('low p50 ms', 11)}${pad('low p99 ms', 11)} │${pad('events', 7)}${pad('commits/s', 10)}${pad('published/s', 12)}${pad('handled/s', 10)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}`);
  for (const { mode, low, saturation } of modes) {
    say(`${mode.padEnd(16)}│${pad(low.p50, 11)}${pad(low.p99, 11)} │${pad(saturation.events, 7)}${pad(saturation.commitsPerSecond, 10)}${pad(saturation.publishedPerSecond, 12)}${pad(saturation.handledPerSecond, 10)}${pad(saturation.latency?.p50, 9)}${pad(saturation.latency?.p99, 9)}`);
  }
  say();
  say(
    `commit → confirmed at saturation, ${WRITERS} writers × ${BATCHED} events per transaction (published from memory, unconsumed queue): ` +
      `${batched.events} events, ${batched.committedEventsPerSecond} committed/s, ${batched.publishedPerSecond} published/s (producer CPU ${batched.producerCpuMsPerEvent} ms/event)`,
  );
  const wake = modes[0]!;
  const published = Math.max(drain.perSecond, batched.publishedPerSecond);
  say();
  say(
    `targets: ≥ 5000 rows/s published: ${drain.perSecond} (drain), ${batched.publishedPerSecond} (sustained) ${published >= 5000 ? 'met' : 'MISSED'}; ` +
      `commit → handled p50 ≤ 5 ms at low load, from memory: ${wake.low.p50} ms ${wake.low.p50 <= 5 ? 'met' : 'MISSED'}`,
  );
  environment.loadAverageAtEnd = round(os.loadavg()[0]!);
  console.log(JSON.stringify({ bench: 'relay', environment, settings: { lowRate: LOW_RATE, lowSeconds: LOW_SECONDS, saturationSeconds: SATURATION_SECONDS, writers: WRITERS, batched: BATCHED }, commits, drain, modes, batched }));
}

try {
  await main();
} catch (error) {
  console.error(`bench:relay failed: ${(error as Error).stack ?? String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
