/**
 * `npm run bench`: end-to-end saga throughput and latency.
 *
 * By default it starts its own system (the four services as separate processes, on fresh
 * databases and broker names, so nothing else is disturbed), measures, and removes it.
 * With --url it measures a system that is already running (npm start / docker compose),
 * watching its exchange for the terminal events.
 *
 *   npm run bench -- [--rate 20] [--rate-seconds 10] [--concurrency 64] [--seconds 60] [--url http://127.0.0.1:3000]
 *
 * Prints sagas completed per second, HTTP accept rate, end-to-end latency (POST → terminal
 * event) p50/p95/p99 and Node CPU milliseconds per saga summed over the four services.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import { v4 } from 'uuid';
import { Type } from 'typebox';
import { createDatabase, loadConfig, messagingSettings, migrateDatabase, retryDelays, serviceTopology } from '@checkout-saga/shared';
import { deleteTopology } from '@checkout-saga/shared/testing';
import { seedProducts, type InventoryTables } from '@checkout-saga/inventory';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '20' },
    'rate-seconds': { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '60' },
    url: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const rate = Number(args.rate);
const rateSeconds = Number(args['rate-seconds']);
const concurrency = Number(args.concurrency);
const seconds = Number(args.seconds);

const services = ['order', 'payment', 'inventory', 'notification'] as const;
const pgServer = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const amqpUrl = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

interface Running {
  orderUrl: string;
  exchange: string;
  pids(): number[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startOwnSystem(): Promise<Running> {
  const id = `bench_${Date.now().toString(36)}`;
  const dbUrl = (service: string) => {
    const url = new URL(pgServer);
    url.pathname = `/${id}_${service}`;
    return url.toString();
  };
  for (const service of ['order', 'payment', 'inventory']) await migrateDatabase({ databaseUrl: dbUrl(service), service });
  const inventory = createDatabase<InventoryTables>(dbUrl('inventory'), 1);
  await seedProducts(inventory.db);
  // Plenty of stock, so the throughput run measures confirmed sagas rather than an empty shelf.
  await inventory.db.updateTable('products').set({ stock: 10_000_000 }).where('sku', '!=', 'LIMITED-EDITION').execute();
  await inventory.close();

  const exchange = `${id}.order.topic`;
  const ports = { order: await freePort(), payment: await freePort(), inventory: await freePort(), notification: await freePort() };
  const children: ChildProcess[] = services.map((service) =>
    spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', `services/${service}/src/main.ts`], {
      env: {
        ...process.env,
        DATABASE_URL: dbUrl(service),
        RABBITMQ_URL: amqpUrl,
        ORDER_EXCHANGE: exchange,
        QUEUE_PREFIX: `${id}.`,
        PORT: String(ports[service]),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  const orderUrl = `http://127.0.0.1:${ports.order}`;
  for (const [service, port] of Object.entries(ports)) {
    const deadline = Date.now() + 30_000;
    while (!(await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.ok, () => false))) {
      if (Date.now() > deadline) throw new Error(`${service} did not become ready`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    orderUrl,
    exchange,
    pids: () => children.map((child) => child.pid!),
    async stop() {
      await Promise.all(children.map((child) => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); })));
      // The services read their retry schedule from this environment: the kit names their queues from it.
      const delays = retryDelays(loadConfig(Type.Object(messagingSettings('order', 0)), process.env));
      for (const service of services) {
        await deleteTopology(amqpUrl, serviceTopology({ exchange, queuePrefix: `${id}.`, service, consumes: [], retryDelaysMs: delays }));
      }
      const { default: pg } = await import('pg');
      const admin = new pg.Client({ connectionString: pgServer });
      await admin.connect();
      for (const service of ['order', 'payment', 'inventory']) await admin.query(`drop database if exists "${id}_${service}" with (force)`);
      await admin.end();
    },
  };
}

function runningSystem(url: string): Running {
  const pids = () =>
    readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((pid) => {
        try {
          const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          return services.some((service) => cmd.includes(`services/${service}/src/main.ts`) || cmd.includes(`dist/${service}.js`));
        } catch {
          return false;
        }
      })
      .map(Number);
  return { orderUrl: url, exchange: process.env.ORDER_EXCHANGE ?? 'order.topic', pids, stop: async () => {} };
}

/** utime + stime of the processes, in milliseconds. */
function cpuMs(pids: number[]): number {
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  return pids.reduce((sum, pid) => {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return sum + (Number(fields[11]) + Number(fields[12])) * tick;
    } catch {
      return sum;
    }
  }, 0);
}

/** Processes of the servers that share this machine, by command name, for their CPU per saga. */
function pidsNamed(name: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name;
      } catch {
        return false;
      }
    })
    .map(Number);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main() {
  const system = args.url ? runningSystem(args.url) : await startOwnSystem();
  const terminal = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  const connection = await amqp.connect(amqpUrl, { noDelay: true });
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, system.exchange, 'order.confirmed');
  await channel.bindQueue(queue, system.exchange, 'order.cancelled');
  await channel.consume(queue, (message) => {
    if (!message) return;
    const { orderId } = JSON.parse(message.content.toString()) as { orderId: string };
    terminal.set(orderId, performance.now());
    waiters.get(orderId)?.();
  }, { noAck: true });

  const skus = ['KEYBOARD', 'MOUSE', 'MONITOR', 'HEADSET'];
  let sequence = 0;
  async function oneSaga(): Promise<{ accepted: boolean; latency?: number }> {
    const started = performance.now();
    const index = sequence++;
    const response = await fetch(`${system.orderUrl}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': v4() },
      body: JSON.stringify({ customerEmail: `bench${index}@example.com`, items: [{ sku: skus[index % skus.length], qty: 1 }], amount: '42.00' }),
    }).catch(() => undefined);
    if (response?.status !== 202) return { accepted: false };
    const { orderId } = (await response.json()) as { orderId: string };
    if (!terminal.has(orderId)) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 30_000);
        waiters.set(orderId, () => { clearTimeout(timer); resolve(); });
      });
      waiters.delete(orderId);
    }
    const done = terminal.get(orderId);
    return { accepted: true, ...(done === undefined ? {} : { latency: done - started }) };
  }

  // Warm-up: JIT, pools, connections.
  await Promise.all(Array.from({ length: 50 }, () => oneSaga()));

  // Phase 1: open loop at a fixed rate, for latency.
  const low: number[] = [];
  const lowRuns: Promise<void>[] = [];
  const interval = 1000 / rate;
  const lowStart = performance.now();
  for (let i = 0; i < rate * rateSeconds; i++) {
    const due = lowStart + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    lowRuns.push(oneSaga().then((result) => { if (result.latency !== undefined) low.push(result.latency); }));
  }
  await Promise.all(lowRuns);

  // Phase 2: closed loop at a fixed concurrency, for throughput, CPU and latency at saturation.
  const high: number[] = [];
  let accepted = 0;
  let rejected = 0;
  const cpuBefore = cpuMs(system.pids());
  const serverPids = { postgres: pidsNamed('postgres'), rabbitmq: pidsNamed('beam.smp'), bench: [process.pid] };
  const serverBefore = Object.fromEntries(Object.entries(serverPids).map(([name, pids]) => [name, cpuMs(pids)]));
  const highStart = performance.now();
  const deadline = highStart + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const result = await oneSaga();
        if (result.accepted) accepted++;
        else rejected++;
        if (result.latency !== undefined) high.push(result.latency);
      }
    }),
  );
  const elapsed = (performance.now() - highStart) / 1000;
  const cpu = cpuMs(system.pids()) - cpuBefore;
  const sagas = Math.max(1, high.length);
  const serverCpuMsPerSaga = Object.fromEntries(
    Object.entries(serverPids).map(([name, pids]) => [name, (cpuMs(name === 'postgres' ? pidsNamed('postgres') : pids) - serverBefore[name]!) / sagas]),
  );

  await connection.close();
  await system.stop();

  low.sort((a, b) => a - b);
  high.sort((a, b) => a - b);
  const result = {
    lowLoad: { rate, sagas: low.length, p50: percentile(low, 50), p95: percentile(low, 95), p99: percentile(low, 99) },
    saturation: {
      concurrency,
      seconds: elapsed,
      sagasPerSecond: high.length / elapsed,
      acceptedPerSecond: accepted / elapsed,
      rejected,
      p50: percentile(high, 50),
      p95: percentile(high, 95),
      p99: percentile(high, 99),
      nodeCpuMsPerSaga: cpu / sagas,
      // Where the rest of the two cores went: PostgreSQL, RabbitMQ and this load generator.
      otherCpuMsPerSaga: serverCpuMsPerSaga,
    },
  };
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  console.log(`low load (${rate} sagas/s for ${rateSeconds} s, ${low.length} sagas): p50 ${ms(result.lowLoad.p50)}, p95 ${ms(result.lowLoad.p95)}, p99 ${ms(result.lowLoad.p99)}`);
  console.log(
    `saturation (concurrency ${concurrency}, ${elapsed.toFixed(0)} s): ${result.saturation.sagasPerSecond.toFixed(0)} sagas/s completed, ` +
      `${result.saturation.acceptedPerSecond.toFixed(0)} orders/s accepted (${rejected} rejected), ` +
      `p50 ${ms(result.saturation.p50)}, p95 ${ms(result.saturation.p95)}, p99 ${ms(result.saturation.p99)}, ` +
      `Node CPU ${result.saturation.nodeCpuMsPerSaga.toFixed(2)} ms/saga (four services)`,
  );
  console.log(
    `CPU per saga elsewhere: ${Object.entries(serverCpuMsPerSaga)
      .map(([name, value]) => `${name} ${value.toFixed(2)} ms`)
      .join(', ')}`,
  );
  console.log(JSON.stringify(result));
}

await main();
