import amqp from 'amqplib';
import { sql, type Kysely } from 'kysely';
import { Type } from 'typebox';
import { loadConfig, migrateDatabase, routingKeyOf, startService, type Envelope, type RunningService } from '@checkout-saga/shared';
import { createTestDatabase, deleteBrokerObjects, testNames, testServers, waitFor } from '@checkout-saga/shared/testing';
import { inventoryService, inventorySettings, type InventoryTables } from '../src/index.ts';

/** Inventory instances on a database and broker names of their own, and a way to publish events to them. */
export interface InventoryHarness {
  /** One or more inventory instances sharing the database and the queue (competing consumers). */
  instances: RunningService<InventoryTables>[];
  url: string;
  db: Kysely<InventoryTables>;
  /** Publishes envelopes to the isolated exchange, as the order and payment services would. */
  publish(...events: Envelope[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startInventory(label: string, options: { env?: Record<string, string>; instances?: number } = {}): Promise<InventoryHarness> {
  const servers = await testServers();
  const database = await createTestDatabase(`inventory_${label}`);
  await migrateDatabase({ databaseUrl: database.url, service: 'inventory' });
  const names = testNames(`inventory-${label}`);
  const config = loadConfig(Type.Object(inventorySettings), {
    DATABASE_URL: database.url,
    RABBITMQ_URL: servers.amqpUrl,
    ORDER_EXCHANGE: names.exchange,
    QUEUE_PREFIX: names.queuePrefix,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    RETRY_BASE_DELAY_MS: '100',
    ...options.env,
  });
  const instances: RunningService<InventoryTables>[] = [];
  const connection = await amqp.connect(servers.amqpUrl);
  const channel = await connection.createConfirmChannel();

  const stop = async () => {
    await Promise.allSettled(instances.map((instance) => instance.stop()));
    await connection.close().catch(() => {});
    const topology = instances[0]?.topology;
    await deleteBrokerObjects(servers.amqpUrl, {
      exchanges: [names.exchange],
      queues: topology ? [topology.queue, topology.deadLetterQueue, ...topology.retryQueues.map((retry) => retry.name)] : [],
    });
    await database.drop();
  };
  try {
    for (let i = 0; i < (options.instances ?? 1); i++) instances.push(await startService(inventoryService, config));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    instances,
    url: instances[0]!.url,
    db: instances[0]!.db,
    async publish(...events) {
      for (const event of events) {
        channel.publish(names.exchange, routingKeyOf(event.type), Buffer.from(JSON.stringify(event)), {
          messageId: event.eventId,
          type: event.type,
          correlationId: event.sagaId,
          contentType: 'application/json',
          persistent: true,
        });
      }
      await channel.waitForConfirms();
    },
    stop,
  };
}

/** The events the service wrote to its outbox for one order, oldest first. */
export async function emitted(db: Kysely<InventoryTables>, orderId: string): Promise<Envelope[]> {
  const rows = await db
    .selectFrom('outbox')
    .select('envelope')
    .where(sql<string>`envelope->>'orderId'`, '=', orderId)
    .orderBy('id')
    .execute();
  return rows.map((row) => row.envelope as Envelope);
}

/** Waits until the service has applied (committed) the event with this handler: its inbox row exists. */
export function applied(db: Kysely<InventoryTables>, eventId: string, handler: string): Promise<unknown> {
  return waitFor(
    () => db.selectFrom('processed_events').select('event_id').where('event_id', '=', eventId).where('handler', '=', handler).executeTakeFirst(),
    { message: `${handler} to apply event ${eventId}` },
  );
}

/** How many deliveries of `handler` a service instance recognised as duplicates (from GET /metrics). */
export async function duplicates(url: string, handler: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith('messages_total{') && candidate.includes(`handler="${handler}"`) && candidate.includes('outcome="duplicate"'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}
