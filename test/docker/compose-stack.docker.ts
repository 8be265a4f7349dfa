/**
 * `npm run test:docker`: the image and the whole compose stack, as a new user runs them.
 *
 * Builds the image from the Dockerfile, starts docker-compose.yml under a project name of its
 * own on free loopback ports, waits for health, places orders through the published port,
 * scales payment to three and inventory to two, kills a payment container while orders are in
 * flight, and checks the saga's invariants in the three databases and the broker; then tears
 * everything down, volumes too.
 *
 * Environment:
 * - TEST_DOCKER_STANDINS=1: use the stand-in base images test/docker/standins/build.sh makes
 *   (a machine that cannot pull; .ci/run sets it), through test/docker/docker-compose.standins.yml.
 * - NPM_CA_FILE (else NODE_EXTRA_CA_CERTS): a CA bundle npm in the build should trust, passed as
 *   the build secret npm_ca (nothing of it stays in the image).
 * - DOCKER: the docker client to use (see support/docker.ts).
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { connect as amqpConnect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createDatabase, type Database } from '@checkout-saga/shared/internal';
import type { Kysely } from 'kysely';
import { waitFor } from '@checkout-saga/shared/testing';
import type { OrderTables } from '@checkout-saga/order';
import type { PaymentTables } from '@checkout-saga/payment';
import type { InventoryTables } from '@checkout-saga/inventory';
import { invariantViolations, stockLevels, type Stock } from '../support/invariants.ts';
import { findDockerTools, run, type DockerTools } from './support/docker.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const IMAGE = 'checkout-saga:local'; // docker-compose.yml's image for the services it builds
const standins = process.env.TEST_DOCKER_STANDINS === '1';
const caFile = [process.env.NPM_CA_FILE, process.env.NODE_EXTRA_CA_CERTS].find((file) => file && existsSync(file));
const project = `cs-docker-${Date.now().toString(36)}`;
const composeFiles = ['docker-compose.yml', ...(standins ? ['test/docker/docker-compose.standins.yml'] : []), 'test/docker/docker-compose.test.yml'];

let tools: DockerTools;
let ports: { order: number; rabbitmq: number; management: number; mailpit: number; postgres: number };
let composeEnv: NodeJS.ProcessEnv;
let handles: Pick<Database<OrderTables>, 'close'>[] = [];
let databases: { orderDb: Kysely<OrderTables>; paymentDb: Kysely<PaymentTables>; inventoryDb: Kysely<InventoryTables> } | undefined;
let initialStock: Stock;
let started = false;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function compose(args: string[], timeoutMs = 300_000) {
  const files = composeFiles.flatMap((file) => ['-f', file]);
  return run(tools.compose.file, [...tools.compose.prefix, '-p', project, ...files, ...args], { env: composeEnv, cwd: root, timeoutMs });
}

interface ContainerState {
  id: string;
  service: string;
  status: string;
  health: string;
  exitCode: number;
}

async function containers(): Promise<ContainerState[]> {
  const { stdout: ids } = await run(tools.docker, ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], { env: tools.env });
  if (!ids.trim()) return [];
  // The whole JSON: a template naming .State.Health fails on containers without a health check.
  const { stdout } = await run(tools.docker, ['inspect', ...ids.trim().split(/\s+/)], { env: tools.env });
  const inspected = JSON.parse(stdout) as { Id: string; Config: { Labels: Record<string, string> }; State: { Status: string; ExitCode: number; Health?: { Status: string } } }[];
  return inspected.map((container) => ({
    id: container.Id,
    service: container.Config.Labels['com.docker.compose.service'] ?? '',
    status: container.State.Status,
    health: container.State.Health?.Status ?? '',
    exitCode: container.State.ExitCode,
  }));
}

/** Every long-running container up (and healthy where it has a check), the migrator done. */
async function stackHealthy(expected: Record<string, number>): Promise<ContainerState[] | undefined> {
  const all = await containers();
  const migrator = all.filter((container) => container.service === 'migrator');
  if (migrator.some((container) => container.status === 'exited' && container.exitCode !== 0)) {
    const { stdout } = await compose(['logs', '--no-color', 'migrator']);
    throw new Error(`the migrator failed:\n${stdout.split('\n').slice(-20).join('\n')}`);
  }
  if (migrator.length === 0 || migrator.some((container) => container.status !== 'exited')) return undefined;
  for (const [service, count] of Object.entries(expected)) {
    const up = all.filter((container) => container.service === service && container.status === 'running' && (container.health === '' || container.health === 'healthy'));
    if (up.length !== count) return undefined;
  }
  return all;
}

const expectedServices = (payment: number, inventory: number) => ({ postgres: 1, rabbitmq: 1, mailpit: 1, order: 1, payment, inventory, notification: 1 });

async function placeOrder(email: string, sku: string, amount: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${ports.order}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ customerEmail: email, items: [{ sku, qty: 1 }], amount }),
  });
  expect(response.status, await response.clone().text()).toBe(202);
  return ((await response.json()) as { orderId: string }).orderId;
}

async function orderStatus(orderId: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${ports.order}/orders/${orderId}`);
  return ((await response.json()) as { status: string }).status;
}

/** Messages and consumers of the services' queues, read through the published AMQP port. */
async function queueStates(names: string[]): Promise<Map<string, { messageCount: number; consumerCount: number }>> {
  const connection = await amqpConnect(`amqp://guest:guest@127.0.0.1:${ports.rabbitmq}`);
  try {
    const states = new Map<string, { messageCount: number; consumerCount: number }>();
    for (const name of names) {
      const channel = await connection.createChannel();
      channel.on('error', () => {});
      const { messageCount, consumerCount } = await channel.checkQueue(name);
      states.set(name, { messageCount, consumerCount });
      await channel.close();
    }
    return states;
  } finally {
    await connection.close();
  }
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

beforeAll(async () => {
  tools = await findDockerTools();
  ports = { order: await freePort(), rabbitmq: await freePort(), management: await freePort(), mailpit: await freePort(), postgres: await freePort() };
  composeEnv = {
    ...tools.env,
    ORDER_PORT: String(ports.order),
    RABBITMQ_PORT: String(ports.rabbitmq),
    RABBITMQ_MANAGEMENT_PORT: String(ports.management),
    MAILPIT_PORT: String(ports.mailpit),
    TEST_POSTGRES_PORT: String(ports.postgres),
    // Slow enough that orders are still in flight when a payment container is killed.
    PAYMENT_PROCESSING_MS: '20',
  };
  console.log(`test:docker: ${tools.docker}, compose ${tools.compose.version}, project ${project}${standins ? ', stand-in base images' : ''}`);

  const building = Date.now();
  await run(
    tools.docker,
    [
      'build',
      '--target',
      'runtime',
      '-t',
      IMAGE,
      ...(standins ? ['--build-arg', 'NODE_IMAGE=checkout-saga-standin/node'] : []),
      ...(caFile ? ['--secret', `id=npm_ca,src=${caFile}`] : []),
      '.',
    ],
    { env: tools.env, cwd: root, timeoutMs: 900_000 },
  );
  const { stdout: size } = await run(tools.docker, ['image', 'inspect', '--format', '{{.Size}}', IMAGE], { env: tools.env });
  console.log(`test:docker: image ${IMAGE} built in ${seconds(building)}, ${(Number(size) / 1e6).toFixed(0)} MB`);

  const starting = Date.now();
  started = true;
  await compose(['up', '-d', '--no-build']);
  await waitFor(() => stackHealthy(expectedServices(1, 1)), { timeoutMs: 180_000, intervalMs: 1000, message: 'the stack to be healthy' });
  console.log(`test:docker: stack healthy in ${seconds(starting)}`);

  const url = (database: string) => `postgres://postgres:postgres@127.0.0.1:${ports.postgres}/${database}`;
  const order = createDatabase<OrderTables>(url('checkout_order'), 2);
  const payment = createDatabase<PaymentTables>(url('checkout_payment'), 2);
  const inventory = createDatabase<InventoryTables>(url('checkout_inventory'), 2);
  handles = [order, payment, inventory];
  databases = { orderDb: order.db, paymentDb: payment.db, inventoryDb: inventory.db };
  initialStock = await stockLevels(databases);
}, 1_200_000);

afterAll(async () => {
  // Down in every case: a stack left running would hold ports and volumes on a shared machine.
  try {
    await Promise.allSettled(handles.map(async (handle) => handle.close()));
  } finally {
    if (started) await compose(['down', '-v', '--remove-orphans', '--timeout', '10']);
  }
  const left = started ? await containers() : [];
  expect(left, 'nothing of the project is left').toEqual([]);
}, 180_000);

describe('the compose stack', () => {
  test('an order placed through the published port on 127.0.0.1 is confirmed', async () => {
    const orderId = await placeOrder('docker-first@example.com', 'KEYBOARD', '89.99');
    expect(await waitFor(async () => ((await orderStatus(orderId)) === 'PENDING' ? undefined : orderStatus(orderId)), { timeoutMs: 60_000, message: 'the first order to settle' })).toBe(
      'CONFIRMED',
    );
  });

  test('scaled to three payment and two inventory containers, they share the queues', async () => {
    const scaling = Date.now();
    await compose(['up', '-d', '--no-build', '--no-recreate', '--scale', 'payment=3', '--scale', 'inventory=2']);
    await waitFor(() => stackHealthy(expectedServices(3, 2)), { timeoutMs: 120_000, intervalMs: 1000, message: 'three payment and two inventory containers to be healthy' });
    const consumers = await waitFor(
      async () => {
        const states = await queueStates(['checkout.payment', 'checkout.inventory']);
        const counts = [states.get('checkout.payment')!.consumerCount, states.get('checkout.inventory')!.consumerCount];
        return counts[0]! >= 3 && counts[1]! >= 2 ? counts : undefined;
      },
      { timeoutMs: 60_000, message: 'the new containers to consume' },
    );
    console.log(`test:docker: scaled in ${seconds(scaling)}; consumers payment ${consumers[0]}, inventory ${consumers[1]}`);
    expect(consumers).toEqual([3, 2]);
  });

  test('a payment container killed while orders are in flight loses nothing: every order settles and the invariants hold', async () => {
    const products = [
      ['MOUSE', '29.50'],
      ['KEYBOARD', '89.99'],
      ['HEADSET', '125.50'],
    ] as const;
    const orderIds = await Promise.all(Array.from({ length: 90 }, (_, i) => placeOrder(`docker-${i}@example.com`, products[i % 3]![0], products[i % 3]![1])));
    // Kill once some charges are done and others are not.
    await waitFor(
      async () => {
        const { count } = await databases!.paymentDb.selectFrom('payments').select((eb) => eb.fn.countAll<string>().as('count')).executeTakeFirstOrThrow();
        return Number(count) > 5;
      },
      { timeoutMs: 60_000, message: 'the first charges of the burst' },
    );
    const victim = (await containers()).find((container) => container.service === 'payment' && container.status === 'running')!;
    await run(tools.docker, ['kill', victim.id], { env: tools.env });
    const pendingAtKill = await databases!.orderDb
      .selectFrom('orders')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .where('status', '=', 'PENDING')
      .executeTakeFirstOrThrow();
    console.log(`test:docker: killed a payment container with ${pendingAtKill.count} of 90 orders pending`);

    const settled = await waitFor(
      async () => {
        const rows = await databases!.orderDb.selectFrom('orders').select(['order_id', 'status']).where('order_id', 'in', orderIds).execute();
        return rows.length === orderIds.length && rows.every((row) => row.status !== 'PENDING') ? rows : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, message: 'every order of the burst to settle' },
    );
    expect(settled.filter((row) => row.status !== 'CONFIRMED'), 'stock and payments suffice: every order is confirmed').toEqual([]);
    const violations = await waitFor(
      async () => {
        const found = await invariantViolations(databases!, initialStock);
        return found.length === 0 ? found : undefined;
      },
      { timeoutMs: 30_000, message: 'the invariants to hold (outboxes drain after the last order settles)' },
    ).catch(async () => invariantViolations(databases!, initialStock));
    expect(violations).toEqual([]);

    const queues = await queueStates(['checkout.order', 'checkout.payment', 'checkout.inventory', 'checkout.notification'].flatMap((queue) => [queue, `${queue}.dlq`]));
    const dead = [...queues].filter(([name, state]) => name.endsWith('.dlq') && state.messageCount > 0);
    expect(dead, 'no dead letters').toEqual([]);
    await waitFor(async () => [...(await queueStates([...queues.keys()]))].every(([, state]) => state.messageCount === 0), { timeoutMs: 60_000, message: 'every queue to drain' });
  });

  test('the dead-letter tool runs from the image: docker compose run --rm order node dist/dlq.js list', async () => {
    const { stdout } = await compose(['run', '--rm', 'order', 'node', 'dist/dlq.js', 'list']);
    expect(stdout).toContain('no dead letters');
  });
});
