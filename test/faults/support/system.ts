/*
 * One isolated deployment for one fault scenario: three fresh databases (migrated and
 * seeded), broker names no one else uses, a TCP proxy per service in front of PostgreSQL and
 * another in front of RabbitMQ (so a scenario can cut or slow one service's link, or all of
 * them), and the four services as child processes talking only through those proxies. The
 * test keeps direct handles on the databases and the broker to judge the outcome.
 */
import type { Kysely } from 'kysely';
import { createDatabase, migrateDatabase, retryDelays, type ServiceName } from '@checkout-saga/shared/internal';
import { createTestDatabase, deleteBrokerObjects, startTcpProxy, testNames, testServers, type TcpProxy, type TestDatabase } from '@checkout-saga/shared/testing';
import type { OrderTables } from '@checkout-saga/order';
import type { PaymentTables } from '@checkout-saga/payment';
import { seedProducts, type InventoryTables } from '@checkout-saga/inventory';
import { stockLevels, type Stock } from '../../support/invariants.ts';
import type { RabbitCluster } from './cluster.ts';
import { freePort, ServiceProcess } from './processes.ts';

export const services = ['order', 'payment', 'inventory', 'notification'] as const satisfies readonly ServiceName[];
export type DatabaseService = 'order' | 'payment' | 'inventory';
const databaseServices = ['order', 'payment', 'inventory'] as const satisfies readonly DatabaseService[];

/** Products with far more stock than any stream can sell: valid orders never run out. */
export const plentifulProducts = ['BULK-A', 'BULK-B', 'BULK-C', 'BULK-D'] as const;
const PLENTY = 1_000_000;

/** Settings every service gets unless a scenario overrides them. */
const MAX_DELIVERY_ATTEMPTS = 5;
const RETRY_BASE_DELAY_MS = 100;
const commonSettings: Record<string, string> = {
  LOG_LEVEL: 'warn',
  DATABASE_POOL_SIZE: '5',
  OUTBOX_POLL_INTERVAL_MS: '200',
  RETRY_BASE_DELAY_MS: String(RETRY_BASE_DELAY_MS),
  MAX_DELIVERY_ATTEMPTS: String(MAX_DELIVERY_ATTEMPTS),
  SHUTDOWN_TIMEOUT_MS: '10000',
};
/** The delays a failing message waits before its retries; their sum bounds what a poison message may cost its neighbours. */
export const retrySchedule = retryDelays({ MAX_DELIVERY_ATTEMPTS, RETRY_BASE_DELAY_MS });
export const maxDeliveryAttempts = MAX_DELIVERY_ATTEMPTS;

export interface FaultSystemOptions {
  /** Settings for every service, over the defaults above. */
  common?: Record<string, string>;
  order?: Record<string, string>;
  payment?: Record<string, string>;
  inventory?: Record<string, string>;
  notification?: Record<string, string>;
  /**
   * Run on this RabbitMQ cluster instead of the machine's node: every service gets all its
   * nodes in RABBITMQ_URL and connects to them directly (no broker proxies).
   */
  cluster?: RabbitCluster;
  /** Processes per service (default 1): the extra ones share the first one's database and queue. */
  instances?: Partial<Record<ServiceName, number>>;
}

export interface FaultSystem {
  label: string;
  /** The broker, directly (not through a proxy): for publishing poison and reading queues. */
  amqpUrl: string;
  exchange: string;
  queuePrefix: string;
  orderUrl: string;
  /** Direct handles on the three databases (not through the proxies), for the verdict. */
  orderDb: Kysely<OrderTables>;
  paymentDb: Kysely<PaymentTables>;
  inventoryDb: Kysely<InventoryTables>;
  /** Stock right after seeding, before any order. */
  initialStock: Stock;
  services: Record<ServiceName, ServiceProcess>;
  /** The further instances of a service (options.instances), beside `services`. */
  replicas: ServiceProcess[];
  databaseProxies: Record<DatabaseService, TcpProxy>;
  /** Empty on a cluster (options.cluster): the services talk to its nodes directly. */
  brokerProxies: Record<ServiceName, TcpProxy>;
  /** Every queue the services declare: main, retry and dead-letter queues. */
  queues(service: ServiceName): { main: string; retries: string[]; deadLetters: string };
  /** Every service's output so far, for a failure report. */
  output(): string;
  /** Kills every child, closes every proxy and handle, deletes the broker objects and drops the databases. Never throws. */
  stop(): Promise<void>;
}

export async function startFaultSystem(label: string, options: FaultSystemOptions = {}): Promise<FaultSystem> {
  // The retry queues' names (to delete them) and the verdict's latency bound derive from these two.
  for (const settings of [options.common, options.order, options.payment, options.inventory, options.notification]) {
    for (const fixed of ['RETRY_BASE_DELAY_MS', 'MAX_DELIVERY_ATTEMPTS']) {
      if (settings && fixed in settings) throw new Error(`startFaultSystem: ${fixed} is fixed for the fault suite (see commonSettings)`);
    }
  }
  const servers = await testServers();
  const names = testNames(`faults-${label}`);
  const cleanups: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    const errors: unknown[] = [];
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error: unknown) => errors.push(error));
    }
    if (errors.length) console.warn(`[faults ${label}] cleanup had ${errors.length} error(s): ${errors.map((error) => (error as Error).message).join('; ')}`);
  };

  const queueNames = (service: ServiceName) => {
    const main = `${names.queuePrefix}${service}`;
    return { main, retries: [...new Set(retrySchedule)].map((delay) => `${main}.retry.${delay}ms`), deadLetters: `${main}.dlq` };
  };
  // A cluster's broker objects go with the cluster.
  if (!options.cluster) cleanups.push(() =>
    deleteBrokerObjects(servers.amqpUrl, {
      exchanges: [names.exchange],
      queues: services.flatMap((service) => {
        const queues = queueNames(service);
        return [queues.main, ...queues.retries, queues.deadLetters];
      }),
    }),
  );

  const children = {} as Record<ServiceName, ServiceProcess>;
  const replicas: ServiceProcess[] = [];
  try {
    // Created and migrated side by side: each is mostly waiting on the server.
    const databases = {} as Record<DatabaseService, TestDatabase>;
    await Promise.all(
      databaseServices.map(async (service) => {
        const database = await createTestDatabase(`faults_${label}_${service}`);
        cleanups.push(() => database.drop());
        databases[service] = database;
        await migrateDatabase({ databaseUrl: database.url, service });
      }),
    );
    const handles = {
      order: createDatabase<OrderTables>(databases.order.url, 3),
      payment: createDatabase<PaymentTables>(databases.payment.url, 3),
      inventory: createDatabase<InventoryTables>(databases.inventory.url, 3),
    };
    for (const handle of Object.values(handles)) cleanups.push(() => handle.close());
    await seedProducts(handles.inventory.db);
    await handles.inventory.db
      .insertInto('products')
      .values(plentifulProducts.map((sku, index) => ({ sku, name: `Fault-test product ${sku}`, price_minor: 100 * (index + 1), stock: PLENTY })))
      .execute();
    const initialStock = await stockLevels({ inventoryDb: handles.inventory.db });

    const database = new URL(servers.databaseUrl);
    const broker = new URL(servers.amqpUrl);
    const target = (url: URL, defaultPort: number) => ({ host: url.hostname, port: Number(url.port || defaultPort) });
    const databaseProxies = {} as Record<DatabaseService, TcpProxy>;
    for (const service of databaseServices) {
      const proxy = await startTcpProxy(target(database, 5432));
      cleanups.push(() => proxy.close());
      databaseProxies[service] = proxy;
    }
    const brokerProxies = {} as Record<ServiceName, TcpProxy>;
    for (const service of options.cluster ? [] : services) {
      const proxy = await startTcpProxy(target(broker, 5672));
      cleanups.push(() => proxy.close());
      brokerProxies[service] = proxy;
    }

    for (const service of services) {
      const env: Record<string, string> = {
        ...commonSettings,
        RABBITMQ_URL: options.cluster ? options.cluster.rabbitmqUrl : brokerProxies[service].url(servers.amqpUrl),
        ORDER_EXCHANGE: names.exchange,
        QUEUE_PREFIX: names.queuePrefix,
        ...(service === 'notification' ? {} : { DATABASE_URL: databaseProxies[service].url(databases[service].url) }),
        ...(service === 'order' ? { SAGA_TIMEOUT_MS: '60000', TIMEOUT_CHECK_INTERVAL_MS: '200' } : {}),
        ...options.common,
        ...options[service],
      };
      const child = new ServiceProcess(service, await freePort(), env);
      // Children are killed before the proxies close and the databases drop (cleanups run in reverse).
      cleanups.push(() => child.stop());
      children[service] = child;
      for (let extra = 1; extra < (options.instances?.[service] ?? 1); extra++) {
        const replica = new ServiceProcess(service, await freePort(), env);
        cleanups.push(() => replica.stop());
        replicas.push(replica);
      }
    }
    // Side by side: a service's first start is mostly module loading. The stream starts only once all four are ready, so no
    // event is published before the queue that takes it exists.
    await Promise.all([...services.map((service) => children[service].start()), ...replicas.map((replica) => replica.start())]);

    return {
      label,
      amqpUrl: options.cluster ? options.cluster.nodes[0]!.url : servers.amqpUrl,
      exchange: names.exchange,
      queuePrefix: names.queuePrefix,
      orderUrl: children.order.url,
      orderDb: handles.order.db,
      paymentDb: handles.payment.db,
      inventoryDb: handles.inventory.db,
      initialStock,
      services: children,
      replicas,
      databaseProxies,
      brokerProxies,
      queues: queueNames,
      output: () => [...services.map((service) => children[service]), ...replicas].map((child) => child.output()).join('\n'),
      stop,
    };
  } catch (error) {
    // Print what the children said before they are killed: it usually explains a failed start.
    const said = [...Object.values(children), ...replicas].map((child) => child.output()).join('\n');
    console.error(`[faults ${label}] start failed: ${(error as Error).message}\n${said}`);
    await stop();
    throw error;
  }
}
