import { Type, type TProperties } from 'typebox';
import type { Kysely } from 'kysely';
import { createDatabase, loadConfig, migrateDatabase, startService, type RunningService } from '@checkout-saga/shared/internal';
import { createTestDatabase, deleteBrokerObjects, testNames, testServers, type TestDatabase } from '@checkout-saga/shared/testing';
import { orderService, orderSettings, type OrderTables } from '@checkout-saga/order';
import { paymentService, paymentSettings, type PaymentTables } from '@checkout-saga/payment';
import { inventoryService, inventorySettings, seedProducts, type InventoryTables } from '@checkout-saga/inventory';
import { notificationService, notificationSettings } from '@checkout-saga/notification';

type Env = Record<string, string>;

export interface SystemOptions {
  /** Settings for every service (e.g. RETRY_BASE_DELAY_MS). */
  common?: Env;
  order?: Env;
  payment?: Env;
  inventory?: Env;
  notification?: Env;
  /** Extra instances of payment and inventory sharing the same database and queue. */
  paymentInstances?: number;
  inventoryInstances?: number;
  /**
   * Start the order service last, with its dashboard pointed at the others (DASHBOARD_INVENTORY_URL,
   * DASHBOARD_PAYMENT_URL, DASHBOARD_NOTIFICATION_URL; `order` settings still win).
   */
  dashboard?: boolean;
}

/**
 * The whole system, in this test process: the four services (real HTTP, real PostgreSQL,
 * real RabbitMQ) on databases and broker names of their own, plus direct handles on the
 * three databases so tests can check the invariants where the data lives.
 */
export interface System {
  orderUrl: string;
  inventoryUrl: string;
  paymentUrl: string;
  exchange: string;
  amqpUrl: string;
  queuePrefix: string;
  orderDb: Kysely<OrderTables>;
  paymentDb: Kysely<PaymentTables>;
  inventoryDb: Kysely<InventoryTables>;
  services: RunningService<any>[];
  /** One more order instance on the same database and queues, with the first one's settings; the caller stops it. */
  startOrderInstance(): Promise<RunningService<OrderTables>>;
  stop(): Promise<void>;
}

export async function startSystem(label: string, options: SystemOptions = {}): Promise<System> {
  const servers = await testServers();
  const names = testNames(label);
  const databases: Record<'order' | 'payment' | 'inventory', TestDatabase> = {
    order: await createTestDatabase(`${label}_order`),
    payment: await createTestDatabase(`${label}_payment`),
    inventory: await createTestDatabase(`${label}_inventory`),
  };
  for (const [service, database] of Object.entries(databases)) await migrateDatabase({ databaseUrl: database.url, service });

  const handles = {
    order: createDatabase<OrderTables>(databases.order.url, 4),
    payment: createDatabase<PaymentTables>(databases.payment.url, 4),
    inventory: createDatabase<InventoryTables>(databases.inventory.url, 4),
  };
  await seedProducts(handles.inventory.db);

  const env = (service: string, extra?: Env): Env => ({
    RABBITMQ_URL: servers.amqpUrl,
    ORDER_EXCHANGE: names.exchange,
    QUEUE_PREFIX: names.queuePrefix,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    OUTBOX_POLL_INTERVAL_MS: '200',
    RETRY_BASE_DELAY_MS: '100',
    ...(service in databases ? { DATABASE_URL: databases[service as keyof typeof databases].url } : {}),
    ...options.common,
    ...extra,
  });
  const configOf = <P extends TProperties>(settings: P, service: string, extra?: Env) => loadConfig(Type.Object(settings), env(service, extra));

  const services: RunningService<any>[] = [];
  const urlOf = (name: string) => services.find((service) => service.name === name)!.url;
  let orderEnv = options.order;
  try {
    if (!options.dashboard) services.push(await startService(orderService, configOf(orderSettings, 'order', orderEnv)));
    for (let i = 0; i < (options.paymentInstances ?? 1); i++) {
      services.push(await startService(paymentService, configOf(paymentSettings, 'payment', options.payment)));
    }
    for (let i = 0; i < (options.inventoryInstances ?? 1); i++) {
      services.push(await startService(inventoryService, configOf(inventorySettings, 'inventory', options.inventory)));
    }
    services.push(await startService(notificationService, configOf(notificationSettings, 'notification', options.notification)));
    if (options.dashboard) {
      orderEnv = { DASHBOARD_INVENTORY_URL: urlOf('inventory'), DASHBOARD_PAYMENT_URL: urlOf('payment'), DASHBOARD_NOTIFICATION_URL: urlOf('notification'), ...options.order };
      services.push(await startService(orderService, configOf(orderSettings, 'order', orderEnv)));
    }
  } catch (error) {
    await Promise.allSettled(services.map((service) => service.stop()));
    throw error;
  }

  return {
    orderUrl: urlOf('order'),
    paymentUrl: urlOf('payment'),
    inventoryUrl: urlOf('inventory'),
    exchange: names.exchange,
    amqpUrl: servers.amqpUrl,
    queuePrefix: names.queuePrefix,
    orderDb: handles.order.db,
    paymentDb: handles.payment.db,
    inventoryDb: handles.inventory.db,
    services,
    startOrderInstance: () => startService(orderService, configOf(orderSettings, 'order', orderEnv)),
    async stop() {
      await Promise.allSettled(services.map((service) => service.stop()));
      await Promise.allSettled(Object.values(handles).map((handle) => handle.close()));
      const queues = services.flatMap((service) =>
        service.topology ? [service.topology.queue, service.topology.deadLetterQueue, ...service.topology.retryQueues.map((retry) => retry.name)] : [],
      );
      await deleteBrokerObjects(servers.amqpUrl, { exchanges: [names.exchange], queues: [...new Set(queues)] });
      await Promise.allSettled(Object.values(databases).map((database) => database.drop()));
    },
  };
}
