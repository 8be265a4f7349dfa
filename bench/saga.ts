/**
 * `npm run bench`: end-to-end saga throughput and latency.
 *
 * By default it starts its own system (the four services as separate processes, on fresh
 * databases and broker names, so nothing else is disturbed), measures, and removes it.
 * With --url it measures a system that is already running (npm start / docker compose),
 * watching its exchange for the terminal events.
 *
 *   npm run bench -- [--rate 20] [--rate-seconds 10] [--concurrency 64] [--seconds 60]
 *                    [--serial-seconds 0] [--no-work] [--json]
 *                    [--tcp] [--profile] [--url http://127.0.0.1:3000]
 *
 * Prints sagas completed per second, HTTP accept rate, end-to-end latency (POST → terminal
 * event) p50/p95/p99, Node CPU milliseconds per saga summed over the four services, the CPU
 * of PostgreSQL, RabbitMQ and the bench itself per saga, and (own system only) PostgreSQL
 * transactions and messages per saga.
 *
 * --serial-seconds N first runs sagas one at a time for N seconds (one saga in flight) and
 * reports their end-to-end p50/p95. --no-work skips the transaction and message counts (and the
 * two 11 s pauses they need). --json prints only the result as one JSON line, whose `summary`
 * holds the figures `npm run bench:mechanisms` compares.
 *
 * RabbitMQ: RABBITMQ_URL if set (a cluster's nodes separated by commas, as for the services;
 * QUORUM_INITIAL_GROUP_SIZE and the other settings in the environment reach the services too),
 * else 127.0.0.1:5672. RabbitMQ's CPU is summed over every beam.smp on the machine.
 *
 * PostgreSQL: BENCH_DATABASE_URL if set; else the local Unix socket when it exists (the
 * services share the machine with PostgreSQL, and loopback TCP is expensive here); --tcp
 * forces 127.0.0.1:5432. --profile starts the services with --cpu-prof and prints where the
 * profiles went. BENCH_NODE_ARGS adds further Node options to the services.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import pg from 'pg';
import { v4 } from 'uuid';
import { Type } from 'typebox';
import { brokerUrls, createDatabase, loadConfig, messagingSettings, migrateDatabase, retryDelays, serviceTopology } from '@checkout-saga/shared/internal';
import { deleteTopology } from '@checkout-saga/shared/testing';
import { seedProducts, type InventoryTables } from '@checkout-saga/inventory';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '20' },
    'rate-seconds': { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '60' },
    'serial-seconds': { type: 'string', default: '0' },
    'no-work': { type: 'boolean', default: false },
    url: { type: 'string' },
    tcp: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const rate = Number(args.rate);
const rateSeconds = Number(args['rate-seconds']);
const concurrency = Number(args.concurrency);
const seconds = Number(args.seconds);
const serialSeconds = Number(args['serial-seconds']);
if (args.profile && args.url) throw new Error('--profile needs the bench to start the services itself (leave out --url)');

const services = ['order', 'payment', 'inventory', 'notification'] as const;
const servicesWithDatabase = ['order', 'payment', 'inventory'] as const;
// As the services read it: one node, or a cluster's nodes separated by commas (the services get the whole list;
// the bench's own connections, to watch and to clean up, use the first node).
const amqpUrl = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const benchAmqpUrl = brokerUrls(amqpUrl)[0]!;

interface PostgresServer {
  /** A URL of the server's `postgres` database; the bench swaps the path for its own databases. */
  url: string;
  transport: 'unix socket' | 'tcp';
  /** The socket directory or host:port, for the report. */
  address: string;
}

const postgresSocketDir = '/var/run/postgresql';

function postgresServer(): PostgresServer {
  const explicit = process.env.BENCH_DATABASE_URL;
  if (explicit) {
    const url = new URL(explicit);
    const host = url.searchParams.get('host') ?? decodeURIComponent(url.hostname);
    return host.startsWith('/') ? { url: explicit, transport: 'unix socket', address: host } : { url: explicit, transport: 'tcp', address: url.host };
  }
  // The services and PostgreSQL share this machine, and loopback TCP round trips are a large
  // part of the CPU per saga here: a Unix socket measures the system without that overhead.
  // pg reads the socket directory from `host=` and keeps it when the bench rewrites the path.
  if (!args.tcp && existsSync(join(postgresSocketDir, '.s.PGSQL.5432'))) {
    return { url: `postgres://postgres@localhost/postgres?host=${postgresSocketDir}`, transport: 'unix socket', address: postgresSocketDir };
  }
  return { url: 'postgres://postgres@127.0.0.1:5432/postgres', transport: 'tcp', address: '127.0.0.1:5432' };
}
const postgres = postgresServer();

/** The same server, another database: the query string (socket directory) is kept. */
function databaseUrl(name: string): string {
  const url = new URL(postgres.url);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Every HTTP request of the bench goes through node:http on keep-alive connections: global
 * fetch (undici) cost about 2 ms of CPU per saga, enough for the load generator to take a
 * noticeable share of the two cores from the system it measures. No socket limit: the bench
 * sets the concurrency itself, and an agent queue would add to the measured latency.
 */
const agent = new http.Agent({ keepAlive: true });

function httpRequest(url: URL, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
  const headers = options.body === undefined ? options.headers : { ...options.headers, 'content-length': String(Buffer.byteLength(options.body)) };
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: options.method ?? 'GET', headers, agent }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(options.body);
  });
}

/** What the bench counts before and after the saturation phase, to divide by the sagas completed. */
interface Counters {
  /** xact_commit + xact_rollback of the bench's own databases. */
  transactions: number;
  /** Outbox rows published and confirmed, all services. */
  published: number;
  /** Messages the services' consumers took, by outcome (handled, duplicate, retried, dead_lettered). */
  consumed: Record<string, number>;
  /** Transactions the services' consumers ran (a batch of messages each). */
  consumerTransactions: number;
}

interface Running {
  orderUrl: string;
  exchange: string;
  pids(): number[];
  /** Only when the bench started the system: it knows the databases and the services' ports. */
  counters?(): Promise<Counters>;
  /** Where the services write their CPU profiles (--profile); they appear when the services exit. */
  profileDir?: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function prepareDatabases(id: string): Promise<void> {
  for (const service of servicesWithDatabase) await migrateDatabase({ databaseUrl: databaseUrl(`${id}_${service}`), service });
  const inventory = createDatabase<InventoryTables>(databaseUrl(`${id}_inventory`), 1);
  await seedProducts(inventory.db);
  // Plenty of stock, so the throughput run measures confirmed sagas rather than an empty shelf.
  await inventory.db.updateTable('products').set({ stock: 10_000_000 }).where('sku', '!=', 'LIMITED-EDITION').execute();
  await inventory.close();
}

function nodeArgs(service: string, profileDir: string | undefined): string[] {
  const extra = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  // One directory per service: the file names only carry the pid, and tsx's loader thread may write its own.
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, service)}`] : [];
  return [...extra, ...profile, '--import', 'tsx', `services/${service}/src/main.ts`];
}

async function waitUntilReady(service: string, port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  const url = new URL(`http://127.0.0.1:${port}/ready`);
  while (!(await httpRequest(url).then((response) => response.status >= 200 && response.status < 300, () => false))) {
    if (Date.now() > deadline) throw new Error(`${service} did not become ready`);
    await sleep(100);
  }
}

async function startOwnSystem(): Promise<Running> {
  const id = `bench_${Date.now().toString(36)}`;
  const databases = servicesWithDatabase.map((service) => `${id}_${service}`);
  await prepareDatabases(id);

  const exchange = `${id}.order.topic`;
  const profileDir = args.profile ? join(tmpdir(), `${id}-cpuprofiles`) : undefined;
  const ports = { order: await freePort(), payment: await freePort(), inventory: await freePort(), notification: await freePort() };
  const children: ChildProcess[] = services.map((service) =>
    spawn(process.execPath, nodeArgs(service, profileDir), {
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl(`${id}_${service}`),
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
  for (const service of services) await waitUntilReady(service, ports[service]);
  return {
    orderUrl: `http://127.0.0.1:${ports.order}`,
    exchange,
    pids: () => children.map((child) => child.pid!),
    counters: async () => ({ transactions: await postgresTransactions(databases), ...(await serviceMessages(Object.values(ports))) }),
    ...(profileDir ? { profileDir } : {}),
    async stop() {
      await Promise.all(children.map((child) => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); })));
      // The services read their retry schedule from this environment: the kit names their queues from it.
      const delays = retryDelays(loadConfig(Type.Object(messagingSettings('order', 0)), process.env));
      for (const service of services) {
        await deleteTopology(benchAmqpUrl, serviceTopology({ exchange, queuePrefix: `${id}.`, service, consumes: [], retryDelaysMs: delays }));
      }
      const admin = new pg.Client({ connectionString: postgres.url });
      await admin.connect();
      for (const name of databases) await admin.query(`drop database if exists "${name}" with (force)`);
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

/**
 * Transactions committed or rolled back in the given databases. A fresh connection each
 * time, since a session caches its statistics snapshot. Includes the relays' idle polls
 * (about one per service per second), which is small next to the sagas' transactions.
 */
async function postgresTransactions(databases: string[]): Promise<number> {
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ count: string }>(
      'select coalesce(sum(xact_commit + xact_rollback), 0) as count from pg_stat_database where datname = any($1)',
      [databases],
    );
    return Number(rows[0]!.count);
  } finally {
    await client.end();
  }
}

/**
 * Messages published and consumed, from the services' own Prometheus counters. Exact and
 * always there, where the RabbitMQ management API may be disabled (it is on the dev VM)
 * and samples its statistics every few seconds. The bench's own terminal-event queue is
 * not counted.
 */
async function serviceMessages(ports: number[]): Promise<Omit<Counters, 'transactions'>> {
  const counts: Omit<Counters, 'transactions'> = { published: 0, consumed: {}, consumerTransactions: 0 };
  for (const port of ports) {
    const { body } = await httpRequest(new URL(`http://127.0.0.1:${port}/metrics`));
    for (const line of body.split('\n')) {
      const sample = /^(outbox_published_total|messages_total|consumer_transaction_messages_count)\{([^}]*)\} (\S+)$/.exec(line);
      if (!sample) continue;
      const value = Number(sample[3]);
      if (sample[1] === 'outbox_published_total') counts.published += value;
      else if (sample[1] === 'consumer_transaction_messages_count') counts.consumerTransactions += value;
      else {
        const outcome = /outcome="([^"]*)"/.exec(sample[2]!)?.[1] ?? 'unknown';
        counts.consumed[outcome] = (counts.consumed[outcome] ?? 0) + value;
      }
    }
  }
  return counts;
}

/**
 * A PostgreSQL backend keeps up to a second of transaction counts to itself, and when it
 * then goes idle it reports them only after 10 s (PGSTAT_IDLE_INTERVAL): counters are read
 * after this pause, on both sides of the phase, so neither side misses a tail. It also lets
 * the notification service consume the last terminal events the bench has already seen.
 * The pause is idle time; it costs no CPU.
 */
const settleMs = 11_000;

async function settledCounters(system: Running): Promise<Counters | undefined> {
  if (!system.counters || args['no-work']) return undefined;
  await sleep(settleMs);
  return system.counters();
}

function perSaga(before: Counters, after: Counters, sagas: number) {
  const consumed = Object.fromEntries(Object.entries(after.consumed).map(([outcome, value]) => [outcome, (value - (before.consumed[outcome] ?? 0)) / sagas]));
  return {
    postgresTransactions: (after.transactions - before.transactions) / sagas,
    messagesPublished: (after.published - before.published) / sagas,
    messagesConsumed: Object.values(consumed).reduce((sum, value) => sum + value, 0),
    messagesConsumedByOutcome: consumed,
    consumerTransactions: (after.consumerTransactions - before.consumerTransactions) / sagas,
  };
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

/**
 * The median time of each step of a confirmed saga, from when the bench saw each event on the
 * exchange: the HTTP answer, then each service's turn from the event it consumed to the event
 * it published (the broker hop to it, its transaction, its publish).
 */
function stepsOfHappyPath(
  posted: Map<string, { started: number; answered: number }>,
  seen: Map<string, Map<string, number>>,
): Record<string, number> {
  const marks = ['OrderCreated', 'PaymentCompleted', 'InventoryReserved', 'OrderConfirmed'] as const;
  const steps: Record<string, number[]> = {
    'POST answered': [],
    'order accepted → OrderCreated': [],
    'payment: → PaymentCompleted': [],
    'inventory: → InventoryReserved': [],
    'order: → OrderConfirmed': [],
  };
  for (const [orderId, { started, answered }] of posted) {
    const times = seen.get(orderId);
    const at = marks.map((mark) => times?.get(mark));
    if (at.some((time) => time === undefined)) continue;
    const [created, paid, reserved, confirmed] = at as number[];
    steps['POST answered']!.push(answered - started);
    steps['order accepted → OrderCreated']!.push(created! - started);
    steps['payment: → PaymentCompleted']!.push(paid! - created!);
    steps['inventory: → InventoryReserved']!.push(reserved! - paid!);
    steps['order: → OrderConfirmed']!.push(confirmed! - reserved!);
  }
  return Object.fromEntries(Object.entries(steps).map(([step, values]) => [step, percentile(values.sort((a, b) => a - b), 50)]));
}

/** The CPU profiles the services wrote on exit, as paths. */
function profileFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.cpuprofile'))
    .sort()
    .map((name) => join(dir, name));
}

/** The JSON line the bench prints last. */
interface BenchResult {
  postgres: Omit<PostgresServer, 'url'> | undefined;
  /** The figures a comparison of runs needs, in milliseconds and sagas per second; p50Serial is null without --serial-seconds. */
  summary: { sagasPerSecond: number; p50AtRate: number; p50Serial: number | null; nodeCpuMsPerSaga: number };
  serial: { seconds: number; sagas: number; p50: number; p95: number } | undefined;
  lowLoad: { rate: number; sagas: number; p50: number; p95: number; p99: number; stepsP50: Record<string, number> };
  saturation: {
    concurrency: number;
    seconds: number;
    sagasPerSecond: number;
    acceptedPerSecond: number;
    rejected: number;
    p50: number;
    p95: number;
    p99: number;
    nodeCpuMsPerSaga: number;
    otherCpuMsPerSaga: Record<string, number>;
    perSaga: ReturnType<typeof perSaga> | undefined;
  };
  profiles: string[] | undefined;
}

async function main() {
  const system = args.url ? runningSystem(args.url) : await startOwnSystem();
  const terminal = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  const connection = await amqp.connect(benchAmqpUrl, { noDelay: true });
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
  // During the low-load phase every event of a saga is watched too, to say which step the time goes to.
  const seen = new Map<string, Map<string, number>>();
  const { queue: everyEvent } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  await channel.bindQueue(everyEvent, system.exchange, '#');
  const { consumerTag: everyEventTag } = await channel.consume(everyEvent, (message) => {
    if (!message) return;
    const { orderId, type } = JSON.parse(message.content.toString()) as { orderId: string; type: string };
    const times = seen.get(orderId) ?? new Map<string, number>();
    if (!times.has(type)) times.set(type, performance.now());
    seen.set(orderId, times);
  }, { noAck: true });

  const skus = ['KEYBOARD', 'MOUSE', 'MONITOR', 'HEADSET'];
  const ordersUrl = new URL('/orders', system.orderUrl);
  let sequence = 0;
  const posted = new Map<string, { started: number; answered: number }>();
  let watchingSteps = false;
  async function oneSaga(): Promise<{ accepted: boolean; latency?: number }> {
    const started = performance.now();
    const index = sequence++;
    const response = await httpRequest(ordersUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': v4() },
      body: JSON.stringify({ customerEmail: `bench${index}@example.com`, items: [{ sku: skus[index % skus.length], qty: 1 }], amount: '42.00' }),
    }).catch(() => undefined);
    if (response?.status !== 202) return { accepted: false };
    const { orderId } = JSON.parse(response.body) as { orderId: string };
    if (watchingSteps) posted.set(orderId, { started, answered: performance.now() });
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

  // Phase 0 (--serial-seconds): one saga in flight, each started when the one before has ended.
  const serial: number[] = [];
  const serialDeadline = performance.now() + serialSeconds * 1000;
  while (performance.now() < serialDeadline) {
    const result = await oneSaga();
    if (result.latency !== undefined) serial.push(result.latency);
  }

  // Phase 1: open loop at a fixed rate, for latency.
  const low: number[] = [];
  const lowRuns: Promise<void>[] = [];
  const interval = 1000 / rate;
  watchingSteps = true;
  const lowStart = performance.now();
  for (let i = 0; i < rate * rateSeconds; i++) {
    const due = lowStart + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    lowRuns.push(oneSaga().then((result) => { if (result.latency !== undefined) low.push(result.latency); }));
  }
  await Promise.all(lowRuns);
  watchingSteps = false;
  await channel.cancel(everyEventTag);
  await channel.deleteQueue(everyEvent);
  const steps = stepsOfHappyPath(posted, seen);
  posted.clear();

  // Phase 2: closed loop at a fixed concurrency, for throughput, CPU and latency at saturation.
  const high: number[] = [];
  let accepted = 0;
  let rejected = 0;
  const countersBefore = await settledCounters(system);
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
  const countersAfter = await settledCounters(system);
  const work = countersBefore && countersAfter ? perSaga(countersBefore, countersAfter, sagas) : undefined;

  await connection.close();
  agent.destroy();
  await system.stop();
  const profiles = system.profileDir ? profileFiles(system.profileDir) : undefined;

  serial.sort((a, b) => a - b);
  low.sort((a, b) => a - b);
  high.sort((a, b) => a - b);
  const result: BenchResult = {
    postgres: args.url ? undefined : { transport: postgres.transport, address: postgres.address },
    summary: {
      sagasPerSecond: high.length / elapsed,
      p50AtRate: percentile(low, 50),
      p50Serial: serialSeconds > 0 ? percentile(serial, 50) : null,
      nodeCpuMsPerSaga: cpu / sagas,
    },
    serial: serialSeconds > 0 ? { seconds: serialSeconds, sagas: serial.length, p50: percentile(serial, 50), p95: percentile(serial, 95) } : undefined,
    lowLoad: { rate, sagas: low.length, p50: percentile(low, 50), p95: percentile(low, 95), p99: percentile(low, 99), stepsP50: steps },
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
      // What one saga costs in transactions and messages (own system only).
      perSaga: work,
    },
    profiles,
  };
  if (!args.json) printText(result);
  console.log(JSON.stringify(result));
}

function printText(result: BenchResult): void {
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const server = result.postgres;
  const hint = server?.transport === 'unix socket' && !process.env.BENCH_DATABASE_URL ? '; --tcp for TCP' : '';
  console.log(server ? `PostgreSQL: ${server.transport} (${server.address})${hint}` : `PostgreSQL: as configured by the running system at ${args.url}`);
  const serial = result.serial;
  if (serial) console.log(`one saga in flight (${serial.seconds} s, ${serial.sagas} sagas): p50 ${ms(serial.p50)}, p95 ${ms(serial.p95)}`);
  console.log(`low load (${result.lowLoad.rate} sagas/s for ${rateSeconds} s, ${result.lowLoad.sagas} sagas): p50 ${ms(result.lowLoad.p50)}, p95 ${ms(result.lowLoad.p95)}, p99 ${ms(result.lowLoad.p99)}`);
  console.log(
    `  where it goes (p50 of each step, confirmed sagas): ${Object.entries(result.lowLoad.stepsP50)
      .map(([step, value]) => `${step} ${ms(value)}`)
      .join(', ')}`,
  );
  console.log(
    `saturation (concurrency ${result.saturation.concurrency}, ${result.saturation.seconds.toFixed(0)} s): ${result.saturation.sagasPerSecond.toFixed(0)} sagas/s completed, ` +
      `${result.saturation.acceptedPerSecond.toFixed(0)} orders/s accepted (${result.saturation.rejected} rejected), ` +
      `p50 ${ms(result.saturation.p50)}, p95 ${ms(result.saturation.p95)}, p99 ${ms(result.saturation.p99)}, ` +
      `Node CPU ${result.saturation.nodeCpuMsPerSaga.toFixed(2)} ms/saga (four services)`,
  );
  console.log(
    `CPU per saga elsewhere: ${Object.entries(result.saturation.otherCpuMsPerSaga)
      .map(([name, value]) => `${name} ${value.toFixed(2)} ms`)
      .join(', ')}`,
  );
  const work = result.saturation.perSaga;
  console.log(
    work
      ? describeWork(work)
      : args['no-work']
        ? 'work per saga: not measured (--no-work)'
        : 'work per saga: not measured with --url (the bench knows neither the databases nor the services’ ports)',
  );
  const profiles = result.profiles;
  if (profiles) console.log(`CPU profiles (whole run, startup included; open in Chrome DevTools or speedscope):\n  ${profiles.map(describeProfile).join('\n  ') || 'none written'}`);
}

/** Node names a profile CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile: thread 0 runs the service, the other one tsx's module loader. */
function describeProfile(path: string): string {
  return `${path} (${basename(path).split('.')[4] === '0' ? 'main thread' : 'tsx loader thread'})`;
}

function describeWork(work: ReturnType<typeof perSaga>): string {
  const unusual = Object.entries(work.messagesConsumedByOutcome)
    .filter(([outcome, value]) => outcome !== 'handled' && value > 0)
    .map(([outcome, value]) => `${outcome} ${value.toFixed(2)}`);
  return (
    `work per saga: ${work.postgresTransactions.toFixed(1)} PostgreSQL transactions (the bench's databases), ` +
    `${work.messagesPublished.toFixed(2)} messages published and ${work.messagesConsumed.toFixed(2)} consumed by the services` +
    (unusual.length ? ` (of which ${unusual.join(', ')})` : '') +
    ` in ${work.consumerTransactions.toFixed(2)} consumer transactions`
  );
}

await main();
