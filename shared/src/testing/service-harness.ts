import amqp, { type ConfirmChannel } from 'amqplib';
import { sql, type Kysely } from 'kysely';
import { Type, type Static, type TObject, type TProperties } from 'typebox';
import { routingKeyOf } from '../contracts/events.ts';
import type { Envelope } from '../contracts/envelope.ts';
import { loadConfig } from '../config/load-config.ts';
import type { MessagingSettings } from '../config/messaging-settings.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { startService, type RunningService, type ServiceDefinition } from '../runtime/service.ts';
import { createTestDatabase, deleteTopology, testNames, type TestDatabase } from './isolation.ts';
import { testServers } from './servers.ts';
import { waitFor } from './wait-for.ts';

export interface ServiceHarnessOptions {
  /** Names this harness's database (`<service>_<label>`) and broker objects (`<service>-<label>`). */
  label: string;
  /** Settings over the harness's own (test names, HTTP on a free port of 127.0.0.1, fast retries). */
  env?: Record<string, string>;
  /** How many instances share the database and the queue (competing consumers); default 1. */
  instances?: number;
}

/** Instances of one service on a database and broker names of their own, and a way to publish events to them. */
export interface ServiceHarness<DB extends MessagingTables = MessagingTables> {
  /** One or more instances sharing the database and the queue (competing consumers). */
  instances: RunningService<DB>[];
  /** The first instance's base URL. */
  url: string;
  /** The first instance's database handle; undefined for a service without a database. */
  db: Kysely<DB>;
  /** Publishes envelopes to the isolated exchange, as the other services' relays would, and waits for the confirms. */
  publish(...events: Envelope[]): Promise<void>;
  /** Stops every instance, then deletes the broker objects and drops the database. */
  stop(): Promise<void>;
}

/**
 * Starts `definition` in this process with `settings` (its environment-variable schema) on
 * a fresh database (created and migrated only when the service has one) and broker names no
 * one else uses. Log output is silent unless TEST_LOG_LEVEL says otherwise.
 */
export async function startTestService<DB extends MessagingTables, P extends TProperties>(
  definition: ServiceDefinition<DB, Static<TObject<P>> & MessagingSettings>,
  settings: P,
  options: ServiceHarnessOptions,
): Promise<ServiceHarness<DB>> {
  const servers = await testServers();
  const service = definition.name;
  let database: TestDatabase | undefined;
  if (definition.database !== false) {
    database = await createTestDatabase(`${service}_${options.label}`);
    await migrateDatabase({ databaseUrl: database.url, service });
  }
  const names = testNames(`${service}-${options.label}`);
  const config = loadConfig(Type.Object(settings), {
    ...(database ? { DATABASE_URL: database.url } : {}),
    RABBITMQ_URL: servers.amqpUrl,
    ORDER_EXCHANGE: names.exchange,
    QUEUE_PREFIX: names.queuePrefix,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    RETRY_BASE_DELAY_MS: '100',
    ...options.env,
  }) as Static<TObject<P>> & MessagingSettings;
  const instances: RunningService<DB>[] = [];
  const connection = await amqp.connect(servers.amqpUrl);
  const channel = await connection.createConfirmChannel();

  const stop = async () => {
    await Promise.allSettled(instances.map((instance) => instance.stop()));
    await connection.close().catch(() => {});
    await deleteTopology(servers.amqpUrl, instances[0]?.topology ?? { exchange: names.exchange });
    await database?.drop();
  };
  try {
    for (let i = 0; i < (options.instances ?? 1); i++) instances.push(await startService(definition, config));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    instances,
    url: instances[0]!.url,
    db: instances[0]!.db,
    publish: (...events) => publishEnvelopes(channel, names.exchange, events),
    stop,
  };
}

/** Publishes envelopes to `exchange` as a service's relay would (routing key, message id, type, saga id as correlation id) and waits for the confirms. */
export async function publishEnvelopes(channel: ConfirmChannel, exchange: string, events: readonly Envelope[]): Promise<void> {
  for (const event of events) {
    channel.publish(exchange, routingKeyOf(event.type), Buffer.from(JSON.stringify(event)), {
      messageId: event.eventId,
      type: event.type,
      correlationId: event.sagaId,
      contentType: 'application/json',
      persistent: true,
    });
  }
  await channel.waitForConfirms();
}

/** The events a service wrote to its outbox for one order, oldest first. */
export async function emitted<DB extends MessagingTables>(db: Kysely<DB>, orderId: string): Promise<Envelope[]> {
  const rows = await (db as unknown as Kysely<MessagingTables>)
    .selectFrom('outbox')
    .select('envelope')
    .where(sql<string>`envelope->>'orderId'`, '=', orderId)
    .orderBy('id')
    .execute();
  return rows.map((row) => row.envelope as Envelope);
}

/** Waits until a service has applied (committed) the event with this handler: its inbox row exists. */
export function applied<DB extends MessagingTables>(db: Kysely<DB>, eventId: string, handler: string): Promise<unknown> {
  const kitDb = db as unknown as Kysely<MessagingTables>;
  return waitFor(
    () => kitDb.selectFrom('processed_events').select('event_id').where('event_id', '=', eventId).where('handler', '=', handler).executeTakeFirst(),
    { message: `${handler} to apply event ${eventId}` },
  );
}

/** How many deliveries of `handler` a service instance recognised as duplicates (from GET /metrics). */
export async function duplicates(url: string, handler: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith('messages_total{') && candidate.includes(`handler="${handler}"`) && candidate.includes('outcome="duplicate"'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}
